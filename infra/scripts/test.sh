#!/usr/bin/env bash
# `make test`: everything CI runs. Installs what the tests need, checks formatting and vet, then runs every
# test (with -race) with DynamoDB Local and the SQS emulator started for the run and stopped after it.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

# -race needs cgo, and cgo a C compiler: without gcc, go silently turns cgo off and -race fails.
if ! command -v gcc >/dev/null 2>&1; then
  sudo=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || {
      echo "test: go test -race needs a C compiler; as root run: apt-get install gcc libc6-dev" >&2; exit 1; }
    sudo=sudo
  fi
  command -v apt-get >/dev/null 2>&1 || {
    echo "test: go test -race needs a C compiler; install gcc and the C library headers" >&2; exit 1; }
  echo "test: installing gcc (go test -race needs cgo)" >&2
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gcc libc6-dev >/dev/null
fi

"$root/infra/scripts/install-chromium.sh"
"$root/infra/scripts/install-emulators.sh"

# Every Go file of the project, not the caches or build outputs (which hold other modules' sources).
if ! unformatted=$(find . -name '*.go' -not -path './.cache/*' -not -path './build/*' -not -path './.aws-sam/*' -print0 \
    | xargs -0 -r gofmt -l); then
  echo "test: gofmt could not check the Go files (its errors are above)" >&2
  exit 1
fi
if [ -n "$unformatted" ]; then
  echo "test: not gofmt-formatted:" >&2
  echo "$unformatted" >&2
  exit 1
fi
go vet ./...

# CloudFormation lint of template.yaml: resource properties, references, conditions, per-region availability
# (cfn-lint applies the SAM transform itself). Warnings fail as errors do: the template is kept warning-free,
# and the one deliberate exception is ignored inside it (Metadata cfn-lint on the resource). The Go checks of
# infra/samtemplate run with the tests below either way.
if command -v cfn-lint >/dev/null 2>&1; then
  echo "test: cfn-lint template.yaml ($(cfn-lint --version 2>&1))" >&2
  if ! cfn-lint --non-zero-exit-code warning template.yaml; then
    echo "test: cfn-lint reports problems in template.yaml (above)" >&2
    exit 1
  fi
else
  echo "cfn-lint not installed: skipping the CloudFormation lint (pip install cfn-lint)" >&2
fi

# REQUIRE_EMULATORS turns "emulator missing" skips into failures: CI never passes by skipping.
export REQUIRE_EMULATORS=1
exec "$root/infra/scripts/with-emulators.sh" go test -race -count=1 -timeout 20m "${@:-./...}"
