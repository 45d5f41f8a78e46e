#!/usr/bin/env bash
# bench/side-by-side.sh [CORPUS_DIR]: darkroom against libvips, Pillow and ImageMagick on the
# same photos in the same run, one core each; prints markdown tables with ratios.
#
# CORPUS_DIR defaults to ../shared/bench/corpus; fetch it with ../shared/bench/fetch-corpus.sh.
# Needs (Debian) libvips-tools imagemagick util-linux, (PyPI) pillow pyvips.
# Env: RUNS (timed runs, default 3), BENCH_CPU (core to pin to, default 1),
#      BASELINES_DIR (the shared bench folder with pil_bench.py, default ../shared/bench).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
baselines="${BASELINES_DIR:-$repo/../shared/bench}"
corpus="${1:-$baselines/corpus}"
for tool in vipsthumbnail vips mogrify taskset python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install libvips-tools imagemagick util-linux" >&2; exit 1; }
done
python3 -c "import PIL, pyvips" 2>/dev/null || { echo "missing Pillow/pyvips: python3 -m pip install pillow pyvips" >&2; exit 1; }
[ -f "$baselines/pil_bench.py" ] || { echo "no pil_bench.py in $baselines (set BASELINES_DIR)" >&2; exit 1; }
# darkroom is built twice: the default build, and with libjpeg-turbo when cmake and nasm
# are there (feature `turbojpeg`, as in the Dockerfile).
variants=(default)
if command -v cmake >/dev/null && command -v nasm >/dev/null; then variants+=(turbojpeg); else
  echo "no cmake/nasm: measuring the default build only (apt-get install cmake nasm for turbojpeg)" >&2; fi
mkdir -p "$repo/target/side-by-side"
binaries=()
for variant in "${variants[@]}"; do
  features=()
  [ "$variant" != default ] && features=(--features "$variant")
  (cd "$repo" && cargo build --release --locked -p darkroom "${features[@]}") >&2
  cp "$repo/target/release/darkroom" "$repo/target/side-by-side/darkroom-$variant"
  binaries+=("darkroom-$variant=$repo/target/side-by-side/darkroom-$variant")
done
echo "# darkroom side by side, $(date -u +%FT%TZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "darkroom $(git -C "$repo" rev-parse --short HEAD); $(vips --version); $(convert -version | head -1 | cut -d' ' -f2-3); Pillow $(python3 -c 'import PIL; print(PIL.__version__)')"
exec python3 "$repo/bench/side_by_side.py" "$(IFS=,; echo "${binaries[*]}")" "$baselines" "$corpus"
