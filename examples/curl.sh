#!/usr/bin/env bash
# darkroom's HTTP API with curl: create a job, watch it, download the results, delete it.
#
#   examples/curl.sh [BASE_URL] [PHOTO...]
#
# BASE_URL defaults to http://127.0.0.1:8080 (`cargo run --release`); the photos default to
# two of the repository's test photos. JSON answers are read with python3's json module;
# `jq -r .id` does the same if you have jq. For a private deployment, set DARKROOM_API_KEY.
set -euo pipefail
base="${1:-http://127.0.0.1:8080}"
shift || true
here="$(cd "$(dirname "$0")" && pwd)"
if [ $# = 0 ]; then set -- "$here/../tests/fixtures/astronaut.jpg" "$here/../tests/fixtures/coffee.png"; fi
auth=()
if [ -n "${DARKROOM_API_KEY:-}" ]; then auth=(-H "Authorization: Bearer $DARKROOM_API_KEY"); fi
field() { python3 -c 'import json, sys; value = json.load(sys.stdin); [value := value[k] for k in sys.argv[1:]]; print(value)' "$@"; }

# 1. Create a job: one text part `recipe` (JSON), one file part `photos` per photo.
#    The answer has the job's id and the owner token that proves you may change it.
recipe='{"ops":[{"op":"crop","aspect":"1:1"},{"op":"recolor","mode":"sepia"},{"op":"thumbnail","size":512}],"format":"jpeg","quality":85}'
photos=()
for photo in "$@"; do photos+=(-F "photos=@$photo"); done
created=$(curl -sS --fail-with-body "${auth[@]}" -F "recipe=$recipe" "${photos[@]}" "$base/api/v1/jobs")
job=$(field id <<<"$created")
token=$(field owner_token <<<"$created")
echo "created job $job — its page: $base/jobs/$job"

# 2. Watch it. `GET /api/v1/jobs/<id>` is the view; poll it (or follow
#    /api/v1/jobs/<id>/events, server-sent events, with `curl -N`) until it is finished.
while :; do
  view=$(curl -sS --fail-with-body "${auth[@]}" "$base/api/v1/jobs/$job")
  state=$(field state <<<"$view")
  echo "state: $state ($(field counts done <<<"$view") done, $(field counts failed <<<"$view") failed)"
  case "$state" in queued|processing) sleep 1 ;; *) break ;; esac
done

# 3. Download every result as one zip (entries are named after the uploads).
curl -sS --fail-with-body "${auth[@]}" -o "job-$job.zip" "$base/api/v1/jobs/$job/archive.zip"
echo "saved job-$job.zip ($(wc -c <"job-$job.zip") bytes)"

# 4. Delete the job and everything in it: only its owner may (X-Owner-Token).
curl -sS --fail-with-body "${auth[@]}" -X DELETE -H "X-Owner-Token: $token" "$base/api/v1/jobs/$job"
gone=$(curl -s -o /dev/null -w '%{http_code}' "${auth[@]}" "$base/api/v1/jobs/$job")
echo "deleted job $job (it now answers $gone)"
