#!/usr/bin/env bash
# The seed's scaling claim on separate hosts: photos/s through the compose stack (LocalStack,
# web, status, and 1, 2 then 3 worker containers of `cpus: 0.6` each, so the machine's cores
# are not what limits them), measured by bench/load.py through the web container's port.
#
#   bench/compose.sh CORPUS_DIR [PHOTOS]      (default 120 photos; needs docker-compose)
#
# On a machine with no registry, build the stand-in images first: tests/compose/standins.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=${1:?usage: bench/compose.sh CORPUS_DIR [PHOTOS]}
photos=${2:-120}
compose=(docker-compose -p darkroombench -f docker-compose.yml -f bench/compose-cpus.yml)
trap '"${compose[@]}" down --volumes --remove-orphans >/dev/null 2>&1 || true' EXIT
echo "| worker containers (cpus 0.6 each) | photos | photos/s | upload→done p50 s | p95 s |"
echo "|---|---|---|---|---|"
for workers in 1 2 3; do
  "${compose[@]}" down --volumes --remove-orphans >/dev/null 2>&1 || true
  if ! log=$("${compose[@]}" up -d --build --scale "worker=$workers" 2>&1); then
    echo "docker-compose up failed:" >&2
    echo "$log" >&2
    exit 1
  fi
  ready=0
  for _ in $(seq 1 120); do
    if curl -fsS "http://127.0.0.1:${DARKROOM_COMPOSE_WEB_PORT:-8080}/readyz" >/dev/null 2>&1; then
      ready=1
      break
    fi
    sleep 1
  done
  if [ "$ready" != 1 ]; then
    echo "the web container did not become ready within 2 minutes; its logs:" >&2
    "${compose[@]}" logs --tail 40 web >&2 || true
    exit 1
  fi
  python3 bench/load.py --base-url "http://127.0.0.1:${DARKROOM_COMPOSE_WEB_PORT:-8080}" --label "$workers" --photos "$photos" "$corpus"
done
