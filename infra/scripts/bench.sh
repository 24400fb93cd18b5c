#!/usr/bin/env bash
# `make bench`: the benchmarks behind the figures in ../README.md#measured. Prints medians of 5 runs where the
# Go benchmark framework is used; integration benchmarks run against the emulators and the sandbox.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
echo "== message crypto (shared/wxcrypt) =="
go test -run='^$' -bench=. -benchmem -count=5 ./shared/wxcrypt | tee /tmp/wxtpp-bench-crypto.txt | grep -E '^Benchmark' | sort
echo
echo "== local runner: cold start and round trip (infra/localrun) =="
go test -run='^$' -bench=. -benchtime=50x ./infra/localrun | grep -E '^Benchmark'
