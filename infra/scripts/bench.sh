#!/usr/bin/env bash
# `make bench`: the benchmarks behind the figures in README.md ("Measured"), printed as they run. The
# integration benchmarks run against DynamoDB Local and the WeChat sandbox, started for the run.
#   BENCH_AUTHORIZERS (10000), BENCH_LATENCY (50ms), BENCH_CONCURRENCY (48) tune the refresh benchmark;
#   BENCH_RATES, BENCH_SECONDS, BENCH_INSTANCES, BENCH_KINDS, BENCH_WARMUP_SECONDS the message-path load;
#   BENCH_APPS (1000), BENCH_AUDIT_DELAY (2s), BENCH_WORKERS (8) the campaign.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

if [ "${1:-}" != "--inside" ]; then
  exec "$root/infra/scripts/with-emulators.sh" "$0" --inside
fi

echo "== message crypto: shared/wxcrypt (5 runs each; compare medians) =="
go test -run='^$' -bench=. -benchmem -count=5 ./shared/wxcrypt | grep -E '^Benchmark' | sort
echo
echo "== local runner: cold start of a Lambda binary and round trip (infra/localrun) =="
go test -run='^$' -bench=. -benchtime=50x ./infra/localrun | grep -E '^Benchmark'
echo
echo "== scheduled refresh: ${BENCH_AUTHORIZERS:-10000} authorizers, ${BENCH_LATENCY:-50ms} WeChat latency (shared/refresher) =="
go test -run='^$' -bench=ScheduledRefresh -benchtime=1x -timeout 30m ./shared/refresher | grep -E '^Benchmark'
echo
echo "== message path, open loop through the local runner and the message binary (infra/devstack) =="
go test -run='^$' -bench=MessagePathOpenLoop -benchtime=1x -timeout 30m ./infra/devstack | grep -E 'open loop|CPU per push|highest|^Benchmark'
echo
echo "== release campaign: ${BENCH_APPS:-1000} mini programs, audits ${BENCH_AUDIT_DELAY:-2s} (shared/campaigns) =="
go test -run='^$' -bench=Campaign -benchtime=1x -timeout 30m ./shared/campaigns | grep -E 'apps: all|^Benchmark'
