#!/usr/bin/env bash
# Coverage-guided fuzzing of darkroom's input parsers (libFuzzer through cargo-fuzz, on the
# stable toolchain: no sanitizer, `-s none`): the recipe parser, the queue message
# decoders, upload intake's judgement and the form fields, and every image decoder.
#
#   fuzz/run.sh              15 s per target (what ./test.sh runs)
#   FUZZ_SECONDS=3600 fuzz/run.sh [target...]   a long run
#
# Each target starts from the seed corpus in fuzz/corpus/<target> (copied, so a run never
# changes the repository). A crash fails the run; its input is kept in
# fuzz/artifacts/<target>/ — turn it into a regression test, then fix it.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${FUZZ_SECONDS:-15}"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(recipe messages intake decode)
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz (crates.io) for the fuzzing run"
  cargo install cargo-fuzz --locked --quiet
fi
# A short run (the test suite's) is a smoke test: built for compile time (opt-level 1, no
# debug info), which takes about half as long as the full optimisation a long run gets.
if [ "$seconds" -le 60 ]; then
  export CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_PROFILE_RELEASE_DEBUG=0
fi
cargo fuzz build -s none --release 2>&1 | tail -1
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for target in "${targets[@]}"; do
  mkdir -p "$work/$target"
  cp corpus/"$target"/* "$work/$target"/
  echo "== fuzzing $target for ${seconds}s"
  cargo fuzz run -s none --release "$target" "$work/$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 2>&1 \
    | grep -E "^(Done|stat::number_of_executed_units|==|SUMMARY|thread '.*' panicked)" || true
  # cargo fuzz exits non-zero on a crash, and leaves the input behind.
  if compgen -G "artifacts/$target/*" >/dev/null; then
    echo "fuzzing $target found a crash: see fuzz/artifacts/$target/" >&2
    exit 1
  fi
done
