#!/bin/sh
# Install ocpp-rpc (mikuso, npm) into .peers/ocpp-rpc, once: an OCPP 1.6J client that is not built
# on the Python ocpp library and validates both directions against the OCPP 1.6 JSON schemas
# in strict mode. Prints the node_modules directory on success.
set -eu
VERSION=2.2.1
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DIR="$ROOT/.peers/ocpp-rpc"
command -v node >/dev/null 2>&1 || { echo "node is not installed" >&2; exit 3; }
command -v npm >/dev/null 2>&1 || { echo "npm is not installed" >&2; exit 3; }
mkdir -p "$DIR"
(
  flock 9
  if [ -f "$DIR/node_modules/ocpp-rpc/package.json" ] &&
     grep -q "\"version\": \"$VERSION\"" "$DIR/node_modules/ocpp-rpc/package.json"; then
    exit 0
  fi
  cd "$DIR"
  [ -f package.json ] || echo '{"name":"strom-ocpp-peer","private":true}' > package.json
  npm install --no-audit --no-fund --silent "ocpp-rpc@$VERSION" >"$DIR/install.log" 2>&1
) 9>"$DIR.lock"
echo "$DIR/node_modules"
