#!/usr/bin/env bash
# Install Debian's Chromium (with chromium-driver, and one font so that pages render text)
# unless /usr/bin/chromium is already there, and print the browser's path. Quiet and
# non-interactive; safe to call from parallel test workers. Exit status is non-zero when it
# cannot be installed (not root, no apt-get, no package); the browser tests turn that into
# peer_missing(...). Costs about 400 MB of disk and well under a minute from a near mirror.
set -euo pipefail

CHROMIUM=/usr/bin/chromium
PACKAGES=(chromium chromium-driver fonts-dejavu-core)

ready() {
    [ -x "$CHROMIUM" ] && [ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]
}

if ready; then
    echo "$CHROMIUM"
    exit 0
fi

command -v apt-get >/dev/null 2>&1 || { echo "apt-get is not available" >&2; exit 2; }
if [ "$(id -u)" -ne 0 ]; then
    echo "installing chromium needs root (apt-get install -y ${PACKAGES[*]})" >&2
    exit 2
fi

export DEBIAN_FRONTEND=noninteractive
# One installer at a time: parallel test workers may all call this script.
exec 9>/tmp/strom-chromium-install.lock
flock 9

if ! ready; then
    log=$(mktemp)
    trap 'rm -f "$log"' EXIT
    install() {
        apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" >"$log" 2>&1
    }
    # A machine whose package lists were never fetched knows no chromium: update once, retry.
    if ! install; then
        apt-get update -q >"$log" 2>&1 || { tail -n 20 "$log" >&2; exit 3; }
        install || { tail -n 20 "$log" >&2; exit 3; }
    fi
fi

ready || { echo "chromium did not install to $CHROMIUM" >&2; exit 3; }
echo "$CHROMIUM"
