#!/usr/bin/env bash
# Usage: tests/ensure_debian_packages.sh 'PATH-GLOB' PACKAGE...
# Installs Debian PACKAGEs with apt-get when no file matches PATH-GLOB, for the tests that need a real
# program: chromium for the UI test, PostgreSQL's server for the portability test. Idempotent: a no-op, with
# no apt-get and no root, when the program is there. Playwright's own browser download is not used because
# it needs hosts outside the package registries.
set -euo pipefail

if [ "$#" -lt 2 ]; then
    echo "usage: $0 'PATH-GLOB' PACKAGE..." >&2
    exit 2
fi
WANTED=$1
shift

present() { compgen -G "$WANTED" >/dev/null; }

if present; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    echo "ensure_debian_packages: $WANTED is missing and this user cannot install it;" \
        "run as root: apt-get update && apt-get install -y $*" >&2
    exit 1
fi

echo "ensure_debian_packages: installing Debian $* with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "$@" >/dev/null

if ! present; then
    echo "ensure_debian_packages: apt-get finished but $WANTED is still missing" >&2
    exit 1
fi
