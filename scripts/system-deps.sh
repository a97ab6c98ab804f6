#!/usr/bin/env bash
# Debian packages the project needs: Chromium for the browser tests (never a downloaded browser) and
# the PostgreSQL client. With --npm also Node.js/npm, which only `make vendor` needs (it refreshes the
# committed front-end libraries in src/riderwatch/static/vendor/ from package-lock.json).
set -euo pipefail
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v pg_isready >/dev/null 2>&1 || missing+=(postgresql-client)
if [ "${1:-}" = "--npm" ]; then
  command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "please install: ${missing[*]} (apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "installing ${missing[*]} from Debian" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
