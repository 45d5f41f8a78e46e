#!/usr/bin/env bash
# Builds, under the exact names docker-compose.yml and deploy/Dockerfile pull, stand-ins for
# the images a registry would give — for machines that reach Debian's and PyPI's package
# mirrors but no container registry (darkroom's own test machines):
#
#   debian:bookworm-slim          Debian bookworm, minbase, made by debootstrap
#   localstack/localstack:4.9.2   PyPI's LocalStack 4.9.2 on it (standins/localstack)
#   rust:1.95-bookworm            compilers and this machine's Rust toolchain on it (standins/rust)
#
# Each carries this machine's extra CA certificates (/usr/local/share/ca-certificates), which
# its egress to the package mirrors needs. Each image is labelled with a hash of what it is
# made of and rebuilt only when that changes, so a second run takes seconds. Where a registry
# is reachable none of this is needed: `docker compose up --build` pulls the real images.
#
# A real image is never replaced: an image of one of these names that is not a stand-in (it
# has no darkroom.standin label) is kept, and an absent one is pulled when the registry
# answers for it within DARKROOM_STANDIN_PULL_SECONDS (default 10; 0 skips the attempt);
# only when it does not is a stand-in built.
#
# Needs root, docker, debootstrap. Prints what it builds; exits non-zero when it cannot.
set -euo pipefail
cd "$(dirname "$0")"
log() { echo "stand-ins: $*" >&2; }
root=
context=
cleanup() { rm -rf ${root:+"$root"} ${context:+"$context"}; }
trap cleanup EXIT

# The mirror this machine's apt uses (deb822 or one-line sources), else Debian's.
mirror() {
  local uri
  uri=$(grep -hE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
    | grep -v security | head -n1 | sed -E 's/^URIs: *//; s/^deb (\[[^]]*\] )?//; s/ .*//') || true
  echo "${uri:-http://deb.debian.org/debian}"
}

# A label naming what an image was built from.
labelled() { docker image inspect "$1" --format '{{index .Config.Labels "darkroom.standin"}}' 2>/dev/null || true; }

# Whether <name> is, or can be made, the real image: present without our label, or pulled.
real_image() {
  local name=$1 label
  if docker image inspect "$1" >/dev/null 2>&1; then
    label=$(labelled "$name")
    [ -z "$label" ] || [ "$label" = "<no value>" ]
    return
  fi
  local seconds="${DARKROOM_STANDIN_PULL_SECONDS:-10}"
  # Asking the registry is quick; the download itself may take minutes and is not cut short.
  [ "$seconds" != 0 ] && timeout "$seconds" docker manifest inspect "$name" >/dev/null 2>&1 \
    && docker pull -q "$name" >/dev/null
}

MIRROR=$(mirror)
CAS=$(ls /usr/local/share/ca-certificates/*.crt 2>/dev/null || true)
CA_HASH=$( { [ -z "$CAS" ] || cat $CAS; } | sha256sum | cut -c1-16)
BASE_HASH=$(printf 'minbase bookworm %s %s v1\n' "$MIRROR" "$CA_HASH" | sha256sum | cut -c1-16)
BASE=darkroom-standin/base:$BASE_HASH

# The debootstrap base every stand-in is built on, made once per mirror and CA set.
ensure_base() {
  if [ "$(labelled "$BASE")" = "$BASE_HASH" ]; then
    return
  fi
  log "debootstrap --variant=minbase bookworm from $MIRROR (about a minute)"
  root=$(mktemp -d)
  debootstrap --variant=minbase --include=ca-certificates bookworm "$root" "$MIRROR" >/dev/null
  for ca in $CAS; do cp "$ca" "$root/usr/local/share/ca-certificates/"; done
  chroot "$root" update-ca-certificates >/dev/null 2>&1
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin
  tar -C "$root" -c . | docker import \
    --change "LABEL darkroom.standin=$BASE_HASH" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
    --change 'CMD ["bash"]' - "$BASE" >/dev/null
  rm -rf "$root"
}

if real_image debian:bookworm-slim; then
  log "debian:bookworm-slim is the real image: kept"
else
  ensure_base
  docker tag "$BASE" debian:bookworm-slim
  log "debian:bookworm-slim is $BASE"
fi

# builds standins/<name> as <tag> unless the image there was built from the same inputs.
build() {
  local name=$1 tag=$2 extra_hash=$3 context=$4
  local hash
  if real_image "$tag"; then
    log "$tag is the real image: kept"
    return
  fi
  hash=$(printf '%s %s\n' "$BASE_HASH" "$extra_hash" | cat - "standins/$name/Dockerfile" | sha256sum | cut -c1-16)
  if [ "$(labelled "$tag")" = "$hash" ]; then
    log "$tag is up to date ($hash)"
    return
  fi
  ensure_base
  log "building $tag"
  docker build -q --build-arg "BASE=$BASE" --label "darkroom.standin=$hash" -t "$tag" \
    -f "standins/$name/Dockerfile" "$context" >/dev/null
}

build localstack localstack/localstack:4.9.2 "" standins/localstack

# The toolchain that builds darkroom here; its docs are left out.
TOOLCHAIN=$(rustc --print sysroot)
RUST_VERSION=$(rustc -V)
context=$(mktemp -d)
hash_input="$RUST_VERSION"
if ! real_image rust:1.95-bookworm \
  && [ "$(labelled rust:1.95-bookworm)" != "$(printf '%s %s\n' "$BASE_HASH" "$hash_input" | cat - standins/rust/Dockerfile | sha256sum | cut -c1-16)" ]; then
  mkdir -p "$context/toolchain"
  cp -a "$TOOLCHAIN/bin" "$TOOLCHAIN/lib" "$context/toolchain/"
  [ -d "$TOOLCHAIN/libexec" ] && cp -a "$TOOLCHAIN/libexec" "$context/toolchain/"
  rm -rf "$context/toolchain/lib/rustlib/"*/analysis "$context/toolchain/lib/rustlib/src"
fi
build rust rust:1.95-bookworm "$hash_input" "$context"
log "ready: debian:bookworm-slim, localstack/localstack:4.9.2, rust:1.95-bookworm"
