#!/usr/bin/env bash
# Install Debian's pebble (Let's Encrypt's ACME test server, with pebble-challtestsrv) unless it
# is already there, and print the path of pebble. Quiet and non-interactive; safe to call from
# parallel test workers. Exit status is non-zero when it cannot be installed (not root, no
# apt-get, no package); the ACME tests turn that into peer_missing(...). About 20 MB.
set -euo pipefail

PEBBLE=/usr/bin/pebble
PACKAGES=(pebble)

ready() {
    [ -x "$PEBBLE" ] && [ -x /usr/bin/pebble-challtestsrv ]
}

if ready; then
    echo "$PEBBLE"
    exit 0
fi

command -v apt-get >/dev/null 2>&1 || { echo "apt-get is not available" >&2; exit 2; }
if [ "$(id -u)" -ne 0 ]; then
    echo "installing pebble needs root (apt-get install -y ${PACKAGES[*]})" >&2
    exit 2
fi

export DEBIAN_FRONTEND=noninteractive
# One installer at a time: parallel test workers may all call this script, and apt-get holds
# its lock (waited for) against the Chromium installer.
exec 9>/tmp/strom-pebble-install.lock
flock 9

if ! ready; then
    log=$(mktemp)
    trap 'rm -f "$log"' EXIT
    install() {
        apt-get install -y -q -o DPkg::Lock::Timeout=300 --no-install-recommends "${PACKAGES[@]}" >"$log" 2>&1
    }
    # A machine whose package lists were never fetched knows no pebble: update once, retry.
    if ! install; then
        apt-get update -q >"$log" 2>&1 || { tail -n 20 "$log" >&2; exit 3; }
        install || { tail -n 20 "$log" >&2; exit 3; }
    fi
fi

ready || { echo "pebble did not install to $PEBBLE" >&2; exit 3; }
echo "$PEBBLE"
