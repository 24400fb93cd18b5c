#!/usr/bin/env bash
# Runs a command with DynamoDB Local and the SQS emulator started on free loopback ports, and stops them (by PID)
# when the command ends, whatever way it ends. The command sees AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL_SQS and
# dummy credentials, so the AWS SDK's default config talks to the emulators.
#   infra/scripts/with-emulators.sh go test ./...
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir="${EMULATOR_DIR:-$root/.cache/emulators}"
"$root/infra/scripts/install-emulators.sh"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null \
  || node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
wait_http() { # url name pid
  for _ in $(seq 1 150); do
    if curl -s -o /dev/null "$1" 2>/dev/null; then return 0; fi
    kill -0 "$3" 2>/dev/null || { echo "with-emulators: $2 exited during start-up; see $logs/$2.log" >&2; return 1; }
    sleep 0.1
  done
  echo "with-emulators: $2 did not answer on $1 within 15s; see $logs/$2.log" >&2; return 1
}

logs=$(mktemp -d -t emulators.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ddb_port=$(free_port)
# From its own folder: DynamoDB Local writes a metadata file into the working directory.
(cd "$logs" && exec java -XX:TieredStopAtLevel=1 -Xmx512m -Djava.library.path="$dir/dynamodb/DynamoDBLocal_lib" \
  -jar "$dir/dynamodb/DynamoDBLocal.jar" -inMemory -sharedDb -disableTelemetry -port "$ddb_port" \
  >"$logs/dynamodb.log" 2>&1) &
pids+=($!)
sqs_port=$(free_port)
PORT="$sqs_port" NODE_PATH="$dir/sqs/node_modules" node "$root/infra/scripts/sqs-server.js" >"$logs/sqs.log" 2>&1 &
pids+=($!)

wait_http "http://127.0.0.1:$ddb_port" dynamodb "${pids[0]}"
wait_http "http://127.0.0.1:$sqs_port" sqs "${pids[1]}"

export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$ddb_port"
export AWS_ENDPOINT_URL_SQS="http://127.0.0.1:$sqs_port"
export AWS_REGION="${AWS_REGION:-us-east-1}" AWS_ACCESS_KEY_ID=dummy AWS_SECRET_ACCESS_KEY=dummy
export AWS_EC2_METADATA_DISABLED=true
echo "with-emulators: DynamoDB Local $AWS_ENDPOINT_URL_DYNAMODB, SQS $AWS_ENDPOINT_URL_SQS (logs in $logs)" >&2
"$@" &
child=$!
pids+=("$child")
set +e
wait "$child"
status=$?
set -e
exit "$status"
