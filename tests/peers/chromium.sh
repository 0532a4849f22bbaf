#!/usr/bin/env bash
# Install Debian's Chromium (and chromium-driver) unless /usr/bin/chromium is already there, and
# print the browser's path. Quiet and non-interactive; safe to call from parallel test workers.
# Exit status is non-zero when it cannot be installed (not root, no apt-get, no package); the
# browser tests turn that into peer_missing(...). Costs about 500 MB of disk and a minute or two.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
    echo "$CHROMIUM"
    exit 0
fi

command -v apt-get >/dev/null 2>&1 || { echo "apt-get is not available" >&2; exit 2; }
if [ "$(id -u)" -ne 0 ]; then
    echo "installing chromium needs root (apt-get install -y chromium chromium-driver)" >&2
    exit 2
fi

export DEBIAN_FRONTEND=noninteractive
# One installer at a time: parallel test workers may all call this script.
exec 9>/tmp/strom-chromium-install.lock
flock 9

if [ ! -x "$CHROMIUM" ]; then
    log=$(mktemp)
    trap 'rm -f "$log"' EXIT
    install() {
        apt-get install -y -q --no-install-recommends chromium chromium-driver >"$log" 2>&1
    }
    # A machine whose package lists were never fetched knows no chromium: update once, retry.
    if ! install; then
        apt-get update -q >"$log" 2>&1 || { cat "$log" >&2; exit 3; }
        install || { tail -n 20 "$log" >&2; exit 3; }
    fi
fi

[ -x "$CHROMIUM" ] || { echo "chromium did not install to $CHROMIUM" >&2; exit 3; }
echo "$CHROMIUM"
