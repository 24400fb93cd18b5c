#!/usr/bin/env bash
# Installs the local AWS emulators into .cache/emulators (idempotent, from the npm registry only):
#   DynamoDB Local - the official jar shipped inside amplify-dynamodb-simulator
#   SQS            - local-aws-sqs, which speaks the JSON protocol of aws-sdk-go-v2
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir="${EMULATOR_DIR:-$root/.cache/emulators}"
mkdir -p "$dir"

need() { command -v "$1" >/dev/null 2>&1 || { echo "install-emulators: $1 is required ($2)" >&2; exit 1; }; }
need java "DynamoDB Local is a Java program; apt-get install -y openjdk-17-jre-headless"
need npm  "the emulators come from the npm registry; apt-get install -y nodejs npm"

tmp=""
trap '[ -z "$tmp" ] || rm -rf "$tmp"' EXIT # a failed download leaves nothing behind

if [ ! -f "$dir/dynamodb/DynamoDBLocal.jar" ]; then
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent amplify-dynamodb-simulator@2.9.30 >/dev/null \
     && tar xzf amplify-dynamodb-simulator-2.9.30.tgz package/emulator)
  rm -rf "$dir/dynamodb" && mv "$tmp/package/emulator" "$dir/dynamodb"
  echo "install-emulators: DynamoDB Local installed in $dir/dynamodb"
fi

if [ ! -f "$dir/sqs/node_modules/local-aws-sqs/package.json" ]; then
  mkdir -p "$dir/sqs"
  (cd "$dir/sqs" && echo '{"private":true}' > package.json \
     && npm install --silent --no-audit --no-fund local-aws-sqs@2.0.2 >/dev/null)
  echo "install-emulators: SQS emulator installed in $dir/sqs"
fi
