#!/usr/bin/env bash
# Lints the CloudFormation template with cfn-lint (AWS's linter, from PyPI), installed once
# into a cached virtualenv. Exit status is cfn-lint's: non-zero on any error or warning.
#
#   deploy/aws/lint.sh            lint deploy/aws/*.yaml
set -euo pipefail
VERSION=1.58.0
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/darkroom"
VENV="${DARKROOM_CFN_LINT_VENV:-$CACHE/cfn-lint-$VERSION}"
here="$(cd "$(dirname "$0")" && pwd)"
if ! "$VENV/bin/cfn-lint" --version >/dev/null 2>&1; then
  echo "cfn-lint: installing $VERSION into $VENV (once; cached afterwards)" >&2
  mkdir -p "$(dirname "$VENV")"
  "${PYTHON:-python3}" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "cfn-lint==$VERSION"
fi
"$VENV/bin/cfn-lint" "$here"/*.yaml
echo "cfn-lint $VERSION: deploy/aws/*.yaml clean" >&2
