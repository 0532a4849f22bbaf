#!/usr/bin/env bash
# Install nostr-relay (a relay written in Python, independent of nostr-sdk), pinned, into
# .peers/nostr-relay of this repository unless that exact version is already there, and print
# the directory. Exit status is non-zero when python3 or the install fails; the tests turn that
# into peer_missing(...).
set -euo pipefail

NOSTR_RELAY_VERSION="1.14"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dir="$repo_root/.peers/nostr-relay"

command -v python3 >/dev/null 2>&1 || { echo "python3 is not installed" >&2; exit 2; }

installed_version() {
    "$dir/bin/python" -c 'import importlib.metadata as m; print(m.version("nostr-relay"))' \
        2>/dev/null || true
}

mkdir -p "$(dirname "$dir")"
# One installer at a time: parallel test workers may all call this script.
exec 9>"$dir.lock"
flock 9

if [ "$(installed_version)" != "$NOSTR_RELAY_VERSION" ]; then
    [ -x "$dir/bin/python" ] || python3 -m venv "$dir" >&2
    "$dir/bin/pip" install --quiet --disable-pip-version-check \
        "nostr-relay==$NOSTR_RELAY_VERSION" >&2
    if [ "$(installed_version)" != "$NOSTR_RELAY_VERSION" ]; then
        echo "nostr-relay $NOSTR_RELAY_VERSION did not install into $dir" >&2
        exit 3
    fi
fi

echo "$dir"
