#!/usr/bin/env python3
"""darkroom against libvips, Pillow and ImageMagick on the same photos, same run, one core.

usage: side_by_side.py LABEL=DARKROOM_BINARY[,LABEL=BINARY...] BASELINES_DIR CORPUS_DIR
Run it through side-by-side.sh, which builds darkroom and checks the tools are there.

Every tool handles the whole corpus in one batch, pinned to one core (taskset) with its
threading turned off, 1 warm-up + RUNS timed runs. CPU time and peak RSS come from wait4(),
so they include child processes. Each ratio column (one per darkroom build) is that build's
photos per CPU-second over the tool's: above 1 means darkroom is faster.
"""
import glob, os, shutil, statistics, subprocess, sys, tempfile, time

builds = dict(pair.split("=", 1) for pair in sys.argv[1].split(","))
baselines, corpus = sys.argv[2:4]
RUNS = int(os.environ.get("RUNS", "3"))
CPU = os.environ.get("BENCH_CPU", "1")
pil_bench = os.path.join(baselines, "pil_bench.py")
pil_margin = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pillow_draft_margin.py")
files = sorted(glob.glob(os.path.join(corpus, "*.jpg")))
if not files:
    sys.exit(f"no .jpg files in {corpus}: fetch the corpus with {baselines}/fetch-corpus.sh {corpus}")
env = dict(os.environ, VIPS_CONCURRENCY="1", MAGICK_THREAD_LIMIT="1", OMP_NUM_THREADS="1", RAYON_NUM_THREADS="1",
           DARKROOM_LOG="warn")


def size_of(path):
    """Auto-oriented size (recipe boxes are in auto-oriented pixels), from the header only:
    peak RSS survives exec, so this driver must stay small for the tools' RSS to mean anything."""
    from PIL import Image
    with Image.open(path) as im:
        w, h = im.size
        return (h, w) if im.getexif().get(0x0112, 1) in (5, 6, 7, 8) else (w, h)


sizes = {f: size_of(f) for f in files}
N = len(files)
THUMB = '{"ops":[{"op":"thumbnail","size":256}],"format":"jpeg","quality":85}'


def pipe_recipe(path):
    """Crop the centre 80 %, fit the long side to 1024, JPEG q85 — the baselines' pipe1024."""
    w, h = sizes[path]
    cw, ch = round(w * 0.8), round(h * 0.8)
    return ('{"ops":[{"op":"crop","x":%d,"y":%d,"width":%d,"height":%d},{"op":"thumbnail","size":1024}],'
            '"format":"jpeg","quality":85}' % ((w - cw) // 2, (h - ch) // 2, cw, ch))


def darkroom_pipe(darkroom, out, fs):
    # A box crop is per photo, so one `darkroom process` per photo (start-up is about 1 ms).
    script = "\n".join("%s process --recipe '%s' --out %s %s" % (darkroom, pipe_recipe(f), out, f)
                       for f in fs)
    return ["sh", "-ec", script]


py = sys.executable
IM_THUMB = "-define jpeg:size=512x512 -auto-orient -thumbnail 256x256 -quality 85".split()
IM_PIPE = "-auto-orient -gravity center -crop 80%x80%+0+0 +repage -resize 1024x1024 -quality 85".split()
TOOLS = {
    "thumb256": {
        **{label: (lambda d: lambda o, fs: [d, "process", "--recipe", THUMB, "--out", o] + fs)(binary)
           for label, binary in builds.items()},
        "vipsthumbnail": lambda o, fs: ["vipsthumbnail", "-s", "256", "-o", o + "/%s.jpg[Q=85,strip]"] + fs,
        "pillow-draft-thumb": lambda o, fs: [py, pil_bench, "pil-thumb", o] + fs,
        "imagemagick": lambda o, fs: ["mogrify", "-path", o] + IM_THUMB + fs,
    },
    "pipe1024": {
        **{label: (lambda d: lambda o, fs: darkroom_pipe(d, o, fs))(binary) for label, binary in builds.items()},
        "pillow-pipe": lambda o, fs: [py, pil_bench, "pil-pipe", o] + fs,
        "pillow-pipe-draft": lambda o, fs: [py, pil_bench, "pil-pipe-draft", o] + fs,
        "pillow-pipe-draft-2x": lambda o, fs: [py, pil_margin, o] + fs,
        "pyvips-pipe": lambda o, fs: [py, pil_bench, "vips-pipe", o] + fs,
        "imagemagick-pipe": lambda o, fs: ["mogrify", "-path", o] + IM_PIPE + fs,
    },
}


def run(argv):
    """-> (wall s, cpu s, peak RSS MiB); exits on failure."""
    t0 = time.perf_counter()
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(["taskset", "-c", CPU] + argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        log.seek(0)
        sys.exit("FAILED: %s\n%s" % (" ".join(argv[:8]), log.read().decode(errors="replace")[-2000:]))
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def measure(builder, fs):
    walls, cpus, rss = [], [], []
    for attempt in range(RUNS + 1):
        out = tempfile.mkdtemp(prefix="side-by-side-")
        wall, cpu, peak = run(builder(out, fs))
        written = len(os.listdir(out))
        shutil.rmtree(out)
        if written != len(fs):
            sys.exit("wrote %d outputs for %d photos: %s" % (written, len(fs), builder(out, fs)[:4]))
        if attempt:  # the first run warms the page cache and is not counted
            walls.append(wall); cpus.append(cpu); rss.append(peak)
    return {"wall": statistics.median(walls), "cpu": statistics.median(cpus), "rss": max(rss),
            "spread": (min(walls), max(walls))}


megapixels = sum(w * h for w, h in sizes.values()) / 1e6
print("corpus: %d JPEGs, %.1f MP; pinned to CPU %s; %d timed runs after 1 warm-up; medians" % (N, megapixels, CPU, RUNS))
for group, tools in TOOLS.items():
    results = {}
    for name, builder in tools.items():
        results[name] = measure(builder, files)
        print("measured %s %s" % (group, name), file=sys.stderr, flush=True)
    print("\n## %s\n" % group)
    print("| tool | photos/s (wall) | photos per CPU-s | wall min–max s | peak RSS MiB | %s |"
          % " | ".join("%s ÷ tool" % label for label in builds))
    print("|---|---|---|---|---|%s" % ("---|" * len(builds)))
    for name, r in results.items():
        ratios = " | ".join("—" if name in builds else "%.2f×" % (r["cpu"] / results[label]["cpu"])
                            for label in builds)
        print("| %s | %.2f | %.2f | %.2f–%.2f | %.0f | %s |" % (
            name, N / r["wall"], N / r["cpu"], r["spread"][0], r["spread"][1], r["rss"], ratios))

# Peak memory of one 24 MP photo (6000×4000, made from the corpus's largest photo) through a
# full recipe: red-eye, whitening, crop, recolour, adjust, resize, encode.
big = max(files, key=lambda f: sizes[f][0] * sizes[f][1])
source_dir = tempfile.mkdtemp(prefix="side-by-side-24mp-")
photo24 = os.path.join(source_dir, "photo-24mp.jpg")
work = os.path.join(source_dir, "out")  # apart from the photo: outputs keep the input's name
os.mkdir(work)
subprocess.run(["vips", "thumbnail", big, photo24 + "[Q=90]", "6000", "--height", "4000", "--size", "force"],
               check=True, env=env)
FULL = ('{"ops":[{"op":"redeye"},{"op":"whiten_teeth"},{"op":"crop","aspect":"4:3"},'
        '{"op":"recolor","mode":"auto_levels"},{"op":"customize","contrast":0.1,"saturation":0.1,"sharpen":0.5},'
        '{"op":"thumbnail","size":1024}],"format":"jpeg","quality":85}')
print("\n## one 24 MP photo (6000×4000)\n")
print("| tool | recipe | CPU s | peak RSS MiB |")
print("|---|---|---|---|")
sizes[photo24] = (6000, 4000)
rows = []
for label, darkroom in builds.items():
    rows += [
        (label, "full: redeye, whiten_teeth, crop 4:3, auto_levels, adjust+sharpen, fit 1024",
         [darkroom, "process", "--recipe", FULL, "--out", work, photo24]),
        (label, "pipe1024", darkroom_pipe(darkroom, work, [photo24])),
        (label, "thumb256", [darkroom, "process", "--recipe", THUMB, "--out", work, photo24]),
    ]
rows += [
    ("pillow-pipe", "pipe1024", [py, pil_bench, "pil-pipe", work, photo24]),
    ("pillow-pipe-draft", "pipe1024", [py, pil_bench, "pil-pipe-draft", work, photo24]),
    ("pillow-pipe-draft-2x", "pipe1024", [py, pil_margin, work, photo24]),
    ("pillow-draft-thumb", "thumb256", [py, pil_bench, "pil-thumb", work, photo24]),
    ("vipsthumbnail", "thumb256", ["vipsthumbnail", "-s", "256", "-o", work + "/%s.v.jpg[Q=85,strip]", photo24]),
]
for label, recipe, argv in rows:
    _, cpu, peak = run(argv)
    print("| %s | %s | %.2f | %.0f |" % (label, recipe, cpu, peak))
shutil.rmtree(source_dir)
