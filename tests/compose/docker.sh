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

# Installs what is missing of docker (the client), docker-compose and, when no daemon answers,
# dockerd; debootstrap too, which standins.sh needs where no registry gives the base images.
install() {
  local missing=()
  command -v docker >/dev/null || missing+=(docker.io)
  command -v docker-compose >/dev/null || missing+=(docker-compose)
  if ! answers && ! command -v dockerd >/dev/null; then missing+=(docker.io); fi
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  if [ ${#missing[@]} = 0 ]; then
    return
  fi
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    log "missing: ${missing[*]}; only root on Debian installs them here"
    # debootstrap alone is needed only when the base images cannot be pulled.
    [ "${missing[*]}" = debootstrap ]
    return
  fi
  log "installing ${missing[*]} (Debian packages)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install ${APT_LOCK:-} -y -qq $(printf '%s\n' "${missing[@]}" | sort -u) >/dev/null
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
  # overlay2 unless told otherwise (inside a container whose own disk is overlayfs: vfs).
  local driver="${DARKROOM_DOCKER_STORAGE_DRIVER:-overlay2}"
  mkdir -p "$run_dir"
  log "starting dockerd --storage-driver=$driver (log: $run_dir/dockerd.log, pid: $run_dir/dockerd.pid)"
  nohup dockerd --storage-driver="$driver" >"$run_dir/dockerd.log" 2>&1 &
  echo $! >"$run_dir/dockerd.pid"
  for _ in $(seq 1 60); do
    if answers; then
      return
    fi
    sleep 1
  done
  log "dockerd did not answer within a minute; its log ends with:"
  tail -n 20 "$run_dir/dockerd.log" >&2 || true
  log "where overlay2 cannot run, try DARKROOM_DOCKER_STORAGE_DRIVER=vfs"
  return 1
}

case "${1:-}" in
  start) start ;;
  *) echo "usage: $0 start" >&2; exit 2 ;;
esac
