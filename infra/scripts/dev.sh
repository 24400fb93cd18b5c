#!/usr/bin/env bash
# `make dev`: the whole platform on this machine. In order:
#   1. builds devstack and the operator CLI (build/devstack, build/wxtpp);
#   2. devstack -check: the settings (DEV_*, WECHAT_*, LOG_LEVEL, the functions' own) and the ports, so a bad
#      setting or a busy port ends here with its message, before any emulator starts;
#   3. devstack with DynamoDB Local and the SQS emulator (with-emulators.sh), until it is stopped.
# Ctrl-C (INT), TERM or HUP stops devstack (its functions and the sandbox), then the emulators, and ends with
# status 0: a stop is how `make dev` ends, not a failure. GO names the go command (make passes its $(GO)).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
go=${GO:-go}

# Until the emulators start, the only process to stop is the step running now (in the background, so that a
# signal is handled at once rather than after the step).
step=""
stop() {
  trap '' INT TERM HUP
  if [ -n "$step" ]; then
    kill -TERM "$step" 2>/dev/null
    wait "$step" 2>/dev/null
  fi
  echo "dev: stopped" >&2
  exit 0
}
trap stop INT TERM HUP
run() {
  "$@" &
  step=$!
  wait "$step"
  step=""
}

run "$go" build -o build/devstack ./infra/cmd/devstack
run "$go" build -o build/wxtpp ./infra/cmd/wxtpp
run build/devstack -check
exec "$root/infra/scripts/with-emulators.sh" --stop-ok build/devstack
