#!/usr/bin/env bash
# Runs a command with DynamoDB Local and the SQS emulator started on free loopback ports, and stops them when the
# command ends, whatever way it ends. The command sees AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL_SQS and dummy
# credentials, so the AWS SDK's default config talks to the emulators.
#   infra/scripts/with-emulators.sh go test ./...
#   infra/scripts/with-emulators.sh --stop-ok build/devstack
#
# A stop asked for with INT, TERM or HUP ends the script with 128+signal (an interrupted test run failed), or,
# with --stop-ok (make dev, which runs until it is stopped), with 0 once the command stopped cleanly (status 0)
# and the emulators are stopped.
#
# The command and each emulator run in their own process group (setsid), and stopping one means TERM to its
# whole group: `go test` and devstack start processes of their own, which must not outlive the run. The groups
# are outside the terminal's foreground group, so Ctrl-C reaches only this script, which stops the command
# first (devstack shuts its functions down while DynamoDB is still up), then the emulators.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir="${EMULATOR_DIR:-$root/.cache/emulators}"
stop_ok=""
if [ "${1:-}" = "--stop-ok" ]; then
  stop_ok=1
  shift
fi
[ $# -gt 0 ] || { echo "usage: with-emulators.sh [--stop-ok] command [args...]" >&2; exit 2; }
command_name=$1
command -v setsid >/dev/null 2>&1 || { echo "with-emulators: setsid is required (apt-get install util-linux)" >&2; exit 1; }
"$root/infra/scripts/install-emulators.sh"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null \
  || node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

# wait_port port name pid: ready once the port accepts a connection (bash's /dev/tcp, no curl needed).
wait_port() {
  local deadline=$((SECONDS + 15))
  while ((SECONDS < deadline)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    kill -0 "$3" 2>/dev/null || { echo "with-emulators: $2 exited during start-up; see $logs/$2.log" >&2; return 1; }
    sleep 0.1
  done
  echo "with-emulators: $2 did not accept connections on 127.0.0.1:$1 within 15s; see $logs/$2.log" >&2
  return 1
}

# stop_group pid: TERM to the process group led by pid, up to 10 s to finish, then KILL whatever is left.
# stopped_status is then the leader's exit status.
stop_group() {
  local pid=$1 i
  if ! kill -TERM -- "-$pid" 2>/dev/null; then
    wait "$pid" 2>/dev/null
    stopped_status=$?
    return 0
  fi
  for ((i = 0; i < 100; i++)); do
    kill -0 -- "-$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL -- "-$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  stopped_status=$?
  return 0
}

logs=$(mktemp -d -t emulators.XXXXXX)
emulators=()
child=""
stopped=""   # set when INT/TERM/HUP asked us to stop: that is not a failure
stopped_status=0
cleanup() {
  local status=$?
  set +e
  trap '' INT TERM HUP # a second Ctrl-C must not cut the clean-up short
  if [ -n "$child" ]; then
    stop_group "$child" # first, while the emulators still answer: devstack stops its functions
    if [ -n "$stopped" ] && [ -n "$stop_ok" ]; then
      case $stopped_status in
        0 | 143) status=0 ;; # stopped cleanly, or by our TERM
        *) echo "with-emulators: $command_name did not stop cleanly (status $stopped_status)" >&2; status=$stopped_status ;;
      esac
    fi
  elif [ -n "$stopped" ] && [ -n "$stop_ok" ]; then
    status=0 # stopped while the emulators were starting
  fi
  for p in "${emulators[@]}"; do stop_group "$p"; done
  if [ "$status" = 0 ] || [ -n "$stopped" ]; then
    rm -rf "$logs"
  else
    echo "with-emulators: emulator logs kept in $logs" >&2
  fi
  if [ -n "$stopped" ] && [ -n "$stop_ok" ] && [ "$status" = 0 ]; then
    echo "with-emulators: emulators stopped" >&2
  fi
  exit "$status"
}
trap cleanup EXIT
# The signal traps ignore further signals at once: make passes a TERM on to us after the one to its group.
on_signal() { trap '' INT TERM HUP; stopped=1; exit "$1"; }
trap 'on_signal 130' INT
trap 'on_signal 143' TERM
trap 'on_signal 129' HUP

ddb_port=$(free_port)
# From its own folder: DynamoDB Local writes a metadata file into the working directory.
(cd "$logs" && exec setsid java ${DYNAMODB_JAVA_OPTS:--XX:TieredStopAtLevel=1} -Xmx512m -Djava.library.path="$dir/dynamodb/DynamoDBLocal_lib" \
  -jar "$dir/dynamodb/DynamoDBLocal.jar" -inMemory -sharedDb -disableTelemetry -port "$ddb_port" \
  >"$logs/dynamodb.log" 2>&1) &
emulators+=($!)
sqs_port=$(free_port)
PORT="$sqs_port" NODE_PATH="$dir/sqs/node_modules" setsid node "$root/infra/scripts/sqs-server.js" >"$logs/sqs.log" 2>&1 &
emulators+=($!)

wait_port "$ddb_port" dynamodb "${emulators[0]}"
wait_port "$sqs_port" sqs "${emulators[1]}"

export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$ddb_port"
export AWS_ENDPOINT_URL_SQS="http://127.0.0.1:$sqs_port"
export AWS_REGION="${AWS_REGION:-us-east-1}" AWS_ACCESS_KEY_ID=dummy AWS_SECRET_ACCESS_KEY=dummy
export AWS_EC2_METADATA_DISABLED=true
echo "with-emulators: DynamoDB Local $AWS_ENDPOINT_URL_DYNAMODB, SQS $AWS_ENDPOINT_URL_SQS (logs in $logs, kept if the run fails)" >&2
setsid "$@" &
child=$!
set +e
wait "$child"
status=$?
set -e
exit "$status"
