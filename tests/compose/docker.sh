#!/usr/bin/env bash
# Makes Docker available for the compose tier, as far as this machine allows:
#
#   tests/compose/docker.sh start   install (as root on Debian: docker.io, docker-compose,
#                                   debootstrap) when missing, start dockerd when none
#                                   answers, and wait until it does; exit 0 when Docker runs
#
# Exits non-zero, saying why, when Docker cannot run here; ./test.sh then skips the compose
# tier, or fails when DARKROOM_REQUIRE_DOCKER=1 (CI).
set -euo pipefail
log() { echo "docker: $*" >&2; }

answers() { docker info >/dev/null 2>&1; }

install() {
  if command -v docker >/dev/null && command -v dockerd >/dev/null && command -v docker-compose >/dev/null \
    && command -v debootstrap >/dev/null; then
    return
  fi
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    log "docker, dockerd, docker-compose or debootstrap is missing, and only root on Debian installs them here"
    return 1
  fi
  log "installing docker.io, docker-compose and debootstrap (Debian packages)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io docker-compose debootstrap >/dev/null
}

start() {
  install
  if answers; then
    return
  fi
  if [ "$(id -u)" != 0 ]; then
    log "no Docker daemon answers, and only root can start one"
    return 1
  fi
  local run_dir="${XDG_CACHE_HOME:-$HOME/.cache}/darkroom/dockerd"
  mkdir -p "$run_dir"
  log "starting dockerd (log: $run_dir/dockerd.log)"
  nohup dockerd --storage-driver=overlay2 >"$run_dir/dockerd.log" 2>&1 &
  for _ in $(seq 1 60); do
    if answers; then
      return
    fi
    sleep 1
  done
  log "dockerd did not answer within a minute; its log ends with:"
  tail -n 20 "$run_dir/dockerd.log" >&2 || true
  return 1
}

case "${1:-}" in
  start) start ;;
  *) echo "usage: $0 start" >&2; exit 2 ;;
esac
