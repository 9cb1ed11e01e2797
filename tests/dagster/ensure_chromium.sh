#!/usr/bin/env bash
# Installs Debian's chromium for the browser tests when it is missing. Idempotent: a no-op when
# /usr/bin/chromium exists. Playwright's own browser download is not used because it needs hosts outside
# the package registries.
set -euo pipefail

CHROMIUM=/usr/bin/chromium
if [ -x "$CHROMIUM" ]; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    echo "ensure_chromium: $CHROMIUM is missing and this user cannot install it;" \
        "run as root: apt-get update && apt-get install -y chromium" >&2
    exit 1
fi

echo "ensure_chromium: installing Debian chromium with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null

if [ ! -x "$CHROMIUM" ]; then
    echo "ensure_chromium: apt-get finished but $CHROMIUM is still missing" >&2
    exit 1
fi
