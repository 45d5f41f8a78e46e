#!/usr/bin/env bash
# Runs LocalStack (S3 + SQS) on this host, without Docker.
#
#   deploy/localstack/localstack.sh start    install (once, into a cached virtualenv) and start; waits until ready
#   deploy/localstack/localstack.sh stop     stop it
#   deploy/localstack/localstack.sh status   exit 0 if it answers
#
# Current LocalStack releases need an account token and Python >= 3.12; 4.9.2 runs without
# either, with the pins below. The endpoint is http://127.0.0.1:4566 (override with
# DARKROOM_LOCALSTACK_PORT).
set -euo pipefail

VERSION=4.9.2
PORT="${DARKROOM_LOCALSTACK_PORT:-4566}"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/darkroom"
VENV="${DARKROOM_LOCALSTACK_VENV:-$CACHE/localstack-$VERSION}"
RUN_DIR="${DARKROOM_LOCALSTACK_RUN_DIR:-$CACHE/localstack-run}"
PID_FILE="$RUN_DIR/localstack.pid"
LOG_FILE="$RUN_DIR/localstack.log"
PYTHON="${PYTHON:-python3}"
ENDPOINT="http://127.0.0.1:$PORT"

log() { echo "localstack: $*" >&2; }

healthy() {
  local health
  health=$(curl -fsS --max-time 2 "$ENDPOINT/_localstack/health" 2>/dev/null) || return 1
  echo "$health" | grep -Eq '"s3": *"(available|running)"' && echo "$health" | grep -Eq '"sqs": *"(available|running)"'
}

install() {
  if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import localstack, localstack.utils.bootstrap" 2>/dev/null; then
    return
  fi
  log "installing LocalStack $VERSION into $VENV (once; cached afterwards)"
  mkdir -p "$(dirname "$VENV")"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
  "$VENV/bin/pip" install --quiet --disable-pip-version-check \
    "localstack-core[runtime]==$VERSION" 'cbor2<5.7' 'cryptography<44' 'pyopenssl<24.3' 'service_identity<24.2'
}

start() {
  if healthy; then
    log "already running at $ENDPOINT"
    return
  fi
  install
  mkdir -p "$RUN_DIR"
  log "starting at $ENDPOINT (log: $LOG_FILE)"
  (
    cd "$RUN_DIR"
    # SQS_ENDPOINT_STRATEGY=path gives queue URLs that resolve without public DNS.
    DNS_ADDRESS=0 DISABLE_EVENTS=1 SERVICES=s3,sqs GATEWAY_LISTEN="127.0.0.1:$PORT" \
      SKIP_SSL_CERT_DOWNLOAD=1 SQS_ENDPOINT_STRATEGY=path LOCALSTACK_HOST="127.0.0.1:$PORT" \
      nohup "$VENV/bin/python" -c "from localstack.utils import bootstrap; bootstrap.start_infra_locally()" \
      >"$LOG_FILE" 2>&1 &
    echo $! >"$PID_FILE"
  )
  for _ in $(seq 1 180); do
    if healthy; then
      log "ready"
      return
    fi
    if ! kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
      log "exited while starting; last lines of $LOG_FILE:"
      tail -n 30 "$LOG_FILE" >&2
      exit 1
    fi
    sleep 1
  done
  log "not ready after 180 s; last lines of $LOG_FILE:"
  tail -n 30 "$LOG_FILE" >&2
  exit 1
}

stop() {
  if [ -f "$PID_FILE" ]; then
    local pid
    pid=$(cat "$PID_FILE")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$PID_FILE"
    log "stopped"
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) healthy ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
