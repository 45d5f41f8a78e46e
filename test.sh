#!/usr/bin/env bash
# darkroom's full test suite: `./test.sh` from a fresh clone.
#
# Runs every crate's unit, contract and end-to-end tests in the dev profile. Installs
# nothing it does not need; see README.md "Testing".
set -euo pipefail
cd "$(dirname "$0")"

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
echo "== darkroom tests: cargo $(cargo --version | cut -d' ' -f2)"
cargo test --workspace --locked "$@"
