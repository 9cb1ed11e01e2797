#!/usr/bin/env bash
# Installs Debian's PostgreSQL server for the portability test (tests/dbt/test_postgres.py) when it is
# missing. Idempotent: a no-op when an initdb is installed. The test starts its own throwaway server on
# 127.0.0.1; nothing here starts one.
set -euo pipefail

if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    echo "ensure_postgres: PostgreSQL is missing and this user cannot install it;" \
        "run as root: apt-get update && apt-get install -y postgresql" >&2
    exit 1
fi

echo "ensure_postgres: installing Debian postgresql with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends postgresql >/dev/null
# Debian's package starts a cluster of its own; the test does not use it.
"${SUDO[@]}" service postgresql stop >/dev/null 2>&1 || true

if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    echo "ensure_postgres: apt-get finished but no initdb is installed" >&2
    exit 1
fi
