#!/usr/bin/env bash
# `make test`: everything CI runs. Installs what the tests need, checks formatting and vet, then runs every
# test (with -race) with DynamoDB Local and the SQS emulator started for the run and stopped after it.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

"$root/infra/scripts/install-chromium.sh"
"$root/infra/scripts/install-emulators.sh"

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.cache/*'))
if [ -n "$unformatted" ]; then
  echo "test: not gofmt-formatted:" >&2
  echo "$unformatted" >&2
  exit 1
fi
go vet ./...

# REQUIRE_EMULATORS turns "emulator missing" skips into failures: CI never passes by skipping.
export REQUIRE_EMULATORS=1
exec "$root/infra/scripts/with-emulators.sh" go test -race -count=1 -timeout 20m "${@:-./...}"
