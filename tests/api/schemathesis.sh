#!/usr/bin/env bash
# Runs schemathesis (PyPI, installed once into a cached virtualenv) against a live darkroom:
# every operation of /api/v1/openapi.json with generated inputs, checking that no input gets
# a 5xx and that every response is one the document describes (status, content type,
# headers, body schema).
#
#   tests/api/schemathesis.sh http://127.0.0.1:8080 [more schemathesis options]
#
# The end-to-end test `openapi_schemathesis` starts darkroom and runs this.
set -euo pipefail
VERSION=4.32.5
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/darkroom"
VENV="${DARKROOM_SCHEMATHESIS_VENV:-$CACHE/schemathesis-$VERSION}"
base="${1:?usage: $0 BASE_URL [schemathesis options]}"
shift
if ! "$VENV/bin/schemathesis" --version >/dev/null 2>&1; then
  echo "schemathesis: installing $VERSION into $VENV (once; cached afterwards)" >&2
  mkdir -p "$(dirname "$VENV")"
  "${PYTHON:-python3}" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$VERSION"
fi
exec "$VENV/bin/schemathesis" --no-color --config-file "$(dirname "$0")/schemathesis.toml" run "$base/api/v1/openapi.json" --url "$base" \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-25}" "$@"
