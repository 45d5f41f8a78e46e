#!/usr/bin/env bash
# darkroom's full test suite: `./test.sh` from a fresh clone.
#
# - starts LocalStack (S3 + SQS) on this host, installing it once into a cached virtualenv
#   (deploy/localstack/localstack.sh), and stops it again at the end;
# - runs every crate's unit, contract and end-to-end tests in the dev profile, with the AWS
#   backend built in, so the contract and end-to-end suites run on the embedded backend AND
#   on LocalStack.
#
# - installs Debian's Chromium (when run as root) and playwright-core (npm) for the browser
#   test of the upload and job pages;
#
# Extra arguments go to `cargo test` (e.g. `./test.sh -p darkroom-queue`).
# DARKROOM_SKIP_LOCALSTACK=1 runs the embedded-backend tests only (no Python needed).
# DARKROOM_SKIP_TURBOJPEG=1 skips the second imaging run with libjpeg-turbo (needs cmake, nasm).
# DARKROOM_SKIP_FUZZ=1 skips the short fuzzing run (fuzz/run.sh).
# DARKROOM_SKIP_CFN_LINT=1 skips linting the AWS template (deploy/aws/lint.sh, cfn-lint).
# DARKROOM_SKIP_HEIC=1 builds without HEIC decoding (feature `heic`: cmake, libde265-dev).
# DARKROOM_SKIP_SCHEMATHESIS=1 skips holding the API to its OpenAPI document with schemathesis
#   (PyPI, installed once into a cached virtualenv by tests/api/schemathesis.sh).
# DARKROOM_SKIP_DOCKER=1 skips the compose tier: docker-compose.yml and deploy/Dockerfile run for
#   real (tests/compose/: Docker installed and started when run as root on Debian, stand-ins for
#   the registry's images built locally). DARKROOM_REQUIRE_DOCKER=1 (CI) fails when Docker
#   cannot run instead of skipping the tier.
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# One build from a fresh clone gains nothing from incremental state, and it costs gigabytes.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
suite_started=$(date +%s)
# Each tier says when it starts, so a slow run shows where its time went.
phase() { echo "== [$(( $(date +%s) - suite_started ))s] $*"; }

# Background steps (installs, the compose tier's image build) run in process groups of their
# own, logged to a file; whatever ends the suite ends them too, children included.
started_localstack=0
background_names=()
cleanup() {
  if [ "$started_localstack" = 1 ]; then deploy/localstack/localstack.sh stop || true; fi
  local name pid_var log_var
  for name in "${background_names[@]}"; do
    pid_var="${name}_pid" log_var="${name}_log"
    if [ -n "${!pid_var}" ]; then kill -- "-${!pid_var}" 2>/dev/null || true; fi
    rm -f "${!log_var}"
  done
}
trap cleanup EXIT
# in_background NAME: starts the function NAME in a process group of its own (setsid), its
# output in a file; sets NAME_pid and NAME_log.
in_background() {
  local log
  log=$(mktemp)
  setsid bash -c "$(declare -f "$1"); $1" >"$log" 2>&1 &
  background_names+=("$1")
  printf -v "$1_pid" '%s' "$!"
  printf -v "$1_log" '%s' "$log"
}
# finish NAME: waits for it and prints its output; returns its exit status.
finish() {
  local pid_var="$1_pid" log_var="$1_log" status=0
  wait "${!pid_var}" || status=$?
  printf -v "$pid_var" '%s' ""
  cat "${!log_var}"
  return "$status"
}
# apt-get waits for a lock another apt-get holds instead of failing at once.
export APT_LOCK="-o DPkg::Lock::Timeout=300"

# Build tools for the native features, installed when run as root on Debian/Ubuntu:
# cmake (libheif and libjpeg-turbo are built from source), nasm (libjpeg-turbo's SIMD),
# libde265-dev and pkg-config (libheif's HEVC decoder), a C++ compiler (libheif).
have_native_tools() { command -v cmake && command -v nasm && command -v pkg-config && command -v c++ \
  && pkg-config --exists libde265; } >/dev/null 2>&1
if ! have_native_tools && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "== installing cmake, nasm, g++, pkg-config and libde265-dev (Debian packages) for HEIC and turbojpeg"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install $APT_LOCK -y -qq cmake nasm g++ pkg-config libde265-dev >/dev/null) \
    || echo "could not install the native build tools" >&2
fi
features=darkroom/aws,darkroom/fault-injection
if [ "${DARKROOM_SKIP_HEIC:-0}" != 1 ]; then
  if have_native_tools; then
    features="$features,darkroom/heic"
  else
    echo "no cmake/pkg-config/libde265-dev: testing without HEIC decoding (feature heic)" >&2
  fi
fi

# The browser test's Debian Chromium and playwright-core (no browser download) install in the
# background while the lints build: downloads beside compiling.
browser_setup() {
  if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== installing Chromium (Debian package) for the browser test"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install $APT_LOCK -y -qq chromium >/dev/null) \
      || { echo "could not install Chromium" >&2; exit 1; }
  fi
  if command -v npm >/dev/null && { [ ! -d tests/browser/node_modules/playwright-core ] || [ ! -d tests/browser/node_modules/axe-core ]; }; then
    echo "== installing playwright-core for the browser test"
    (cd tests/browser && npm ci --no-audit --no-fund --silent)
  fi
}
browser_setup_pid=
if [ "${DARKROOM_SKIP_BROWSER:-0}" != 1 ]; then
  in_background browser_setup
  export DARKROOM_REQUIRE_BROWSER=1
fi

# Lints first: a formatting slip or a clippy warning fails in a minute, not after the suite.
phase "lints: cargo fmt --check, cargo clippy -D warnings"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked --features "$features" -- -D warnings

if [ -n "$browser_setup_pid" ] && ! finish browser_setup; then
  echo "the browser test's setup failed (see above): Chromium or playwright-core is missing" >&2
  exit 1
fi

if [ "${DARKROOM_SKIP_LOCALSTACK:-0}" != 1 ]; then
  if ! deploy/localstack/localstack.sh status; then
    # Build while LocalStack installs and starts: both take minutes on a fresh machine.
    deploy/localstack/localstack.sh start &
    localstack_pid=$!
    started_localstack=1
    cargo test --workspace --locked --features "$features" --no-run
    wait "$localstack_pid"
  fi
  export DARKROOM_TEST_LOCALSTACK="http://127.0.0.1:${DARKROOM_LOCALSTACK_PORT:-4566}"
  export DARKROOM_REQUIRE_LOCALSTACK=1
else
  echo "DARKROOM_SKIP_LOCALSTACK=1: LocalStack variants of the tests are skipped" >&2
fi

phase "cargo test (unit, contract, end-to-end, browser)"
cargo test --workspace --locked --features "$features" "$@"
# Nothing after this needs the host's LocalStack (the compose stack runs its own).
if [ "$started_localstack" = 1 ]; then
  deploy/localstack/localstack.sh stop || true
  started_localstack=0
fi

# The compose tier's setup (Docker, the stand-in images, darkroom's image: most of the tier's
# time) runs in the background from here, beside cfn-lint and fuzzing; its tests run last.
# Exit 10: Docker cannot run here (skipped unless required); 20: darkroom's image does not
# build (always a failure).
compose_prepare() {
  { tests/compose/docker.sh start && tests/compose/standins.sh; } || exit 10
  docker-compose -p darkroomtest -f docker-compose.yml build --quiet || exit 20
}
compose_prepare_pid=
if [ "${DARKROOM_SKIP_DOCKER:-0}" != 1 ] && [ $# = 0 ]; then
  phase "compose tier: Docker, stand-in images and darkroom's image, in the background"
  in_background compose_prepare
fi

# The AWS template through cfn-lint (PyPI, cached virtualenv); DARKROOM_SKIP_CFN_LINT=1 skips it.
if [ "${DARKROOM_SKIP_CFN_LINT:-0}" != 1 ] && [ $# = 0 ]; then
  phase "cfn-lint"
  deploy/aws/lint.sh
fi

# A short coverage-guided fuzzing run of every input parser (15 s per target; cargo-fuzz is
# installed once from crates.io). FUZZ_SECONDS=3600 fuzz/run.sh runs longer.
if [ "${DARKROOM_SKIP_FUZZ:-0}" != 1 ] && [ $# = 0 ]; then
  phase "fuzzing"
  fuzz/run.sh
fi

# The imaging tests once more with libjpeg-turbo decoding (feature `turbojpeg`, as the
# Dockerfile builds it); it needs cmake and nasm. Before the compose tests, while darkroom's
# image may still be building: both keep the two cores busy.
if [ "${DARKROOM_SKIP_TURBOJPEG:-0}" != 1 ] && [ $# = 0 ]; then
  if { command -v cmake && command -v nasm; } >/dev/null; then
    phase "imaging tests with turbojpeg"
    cargo test --locked -p darkroom-imaging --features turbojpeg
  else
    echo "no cmake/nasm: the turbojpeg variant of the imaging tests is skipped" >&2
  fi
fi

# The compose tier: docker-compose.yml against LocalStack, run for real in containers.
if [ -n "$compose_prepare_pid" ]; then
  phase "compose tier: waiting for its setup"
  prepared=0
  finish compose_prepare || prepared=$?
  if [ "$prepared" = 0 ]; then
    phase "compose tier: tests"
    # --workspace, as above: the same feature set, so nothing is compiled again.
    DARKROOM_TEST_COMPOSE=1 cargo test --workspace --locked --features "$features" --test compose -- --test-threads 1
  elif [ "$prepared" = 10 ] && [ "${DARKROOM_REQUIRE_DOCKER:-0}" != 1 ]; then
    echo "Docker could not run here: the compose tier is skipped" >&2
  elif [ "$prepared" = 10 ]; then
    echo "DARKROOM_REQUIRE_DOCKER=1 but Docker could not run here (see above)" >&2
    exit 1
  else
    echo "darkroom's image did not build with deploy/Dockerfile (see above)" >&2
    exit 1
  fi
fi

phase "done ($(du -sh "${CARGO_TARGET_DIR:-target}" 2>/dev/null | cut -f1) in the build directory)"
