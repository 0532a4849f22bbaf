#!/usr/bin/env bash
# Install the independent nostr implementation (nostr-tools, pinned) and the `ws` package into
# .peers/node of this repository, unless that exact version is already there, and print the
# directory. Exit status is non-zero when node or npm is missing or the install fails; the tests
# turn that into peer_missing(...).
set -euo pipefail

NOSTR_TOOLS_VERSION="2.25.2"
WS_VERSION="8.18.3"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dir="$repo_root/.peers/node"

command -v node >/dev/null 2>&1 || { echo "node is not installed" >&2; exit 2; }
command -v npm >/dev/null 2>&1 || { echo "npm is not installed" >&2; exit 2; }

installed_version() {
    node -e 'try { console.log(require(process.argv[1]).version) } catch (e) { console.log("") }' \
        "$dir/node_modules/nostr-tools/package.json"
}

mkdir -p "$dir"
# One installer at a time: parallel test workers may all call this script.
exec 9>"$dir.lock"
flock 9

if [ "$(installed_version)" != "$NOSTR_TOOLS_VERSION" ] || [ ! -d "$dir/node_modules/ws" ]; then
    (
        cd "$dir"
        [ -f package.json ] || npm init -y >/dev/null 2>&1
        npm install --no-audit --no-fund --loglevel=error \
            "nostr-tools@$NOSTR_TOOLS_VERSION" "ws@$WS_VERSION" >&2
    )
    if [ "$(installed_version)" != "$NOSTR_TOOLS_VERSION" ]; then
        echo "nostr-tools $NOSTR_TOOLS_VERSION did not install into $dir" >&2
        exit 3
    fi
fi

echo "$dir"
