#!/usr/bin/env python3
"""Load benchmark: N photos through a running darkroom, with 1 and 2 worker processes.

usage: bench/load.py [--photos N] [--backend local|localstack] [--darkroom BIN] CORPUS_DIR
       bench/load.py --base-url URL [--label NAME] [--photos N] CORPUS_DIR   (a running darkroom)

For each worker count (1, then 2), starts `darkroom web`, `darkroom status` and that many
`darkroom worker --concurrency 1` processes on a fresh data directory (or a fresh bucket and
queue prefix on LocalStack at $AWS_ENDPOINT_URL, default http://127.0.0.1:4566), uploads N
photos (cycling through the corpus) in batches of 10 to one job, and follows the job to the
end. Reported per run:

  - photos/s: N over the time from the first upload to the last photo done;
  - upload->done latency p50/p95/p99, each photo's done time being its view's `updated_at`
    (recorded by the status process, so polling does not blur it);

the job view's latency once the job is done (p50/p95 of GETs spaced past the web tier's
refresh window, so each reads the store); and the baseline: `darkroom process` on the same photos and recipe, one process per worker
(each given its share), wall time. The scaling ratio is 2 workers' photos/s over 1 worker's.

With --fairness, it measures fair sharing instead: one worker with one slot, a big job of
N photos uploaded by one client, and while it runs a job of one photo from another client
every --every seconds (each from an address of its own, passed as X-Forwarded-For to a web
tier that trusts it). Reported: the one-photo jobs' upload->done p50/p95/max, and the big
job's photos/s. Run it with --darkroom pointing at two builds to compare them.
Needs only Python's standard library; build darkroom first (`cargo build --release
--features aws` for LocalStack).
"""
import argparse, glob, json, os, random, shutil, signal, statistics, subprocess, sys, tempfile, time
import urllib.request

RECIPE = {"ops": [{"op": "crop", "aspect": "4:3"}, {"op": "recolor", "mode": "sepia"},
                  {"op": "thumbnail", "size": 1024}], "format": "jpeg", "quality": 85}
BATCH = 10
VIEW_SAMPLES = 30


def jpeg_megapixels(data):
    """(megapixels, progressive) from a JPEG's frame header; None if not a JPEG."""
    at = 2
    while at + 9 < len(data) and data[at] == 0xFF:
        marker, length = data[at + 1], int.from_bytes(data[at + 2:at + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = int.from_bytes(data[at + 5:at + 7], "big"), int.from_bytes(data[at + 7:at + 9], "big")
            return width * height / 1e6, data[at + 1] == 0xC2
        at += 2 + length
    return None


def multipart(fields, files):
    boundary = "darkroom-load-%016x" % random.getrandbits(64)
    body = bytearray()
    for name, value in fields:
        body += b"--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n" % (
            boundary.encode(), name.encode(), value.encode())
    for name, filename, data in files:
        body += b"--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\n" % (
            boundary.encode(), name.encode(), filename.encode())
        body += b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n"
    body += b"--%s--\r\n" % boundary.encode()
    return "multipart/form-data; boundary=" + boundary, bytes(body)


def request(method, url, body=None, headers=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    with urllib.request.urlopen(req, timeout=300) as reply:
        return json.loads(reply.read() or b"null")


def start(darkroom, args, env, log):
    return subprocess.Popen([darkroom] + args, env=env, stdout=subprocess.PIPE, stderr=log, text=True)


def listening_url(process):
    # darkroom prints "listening on http://..." on stdout once it serves.
    for line in process.stdout:
        if "http://" in line:
            return line[line.index("http://"):].split()[0].rstrip(".,")
    sys.exit("a darkroom process ended before it listened")


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def wait_until_finished(base, job, while_waiting=None):
    """Polls the job's view until it is no longer queued or processing; exits unless every
    photo is done. `while_waiting` runs before each poll (the fairness run sends its small
    jobs from there). Returns the view and when its last photo was done (seconds)."""
    while True:
        if while_waiting:
            while_waiting()
        view = request("GET", "%s/api/v1/jobs/%s" % (base, job))
        if view["state"] not in ("queued", "processing"):
            break
        time.sleep(0.2)
    done = [p for p in view["photos"] if p["state"] == "done"]
    if len(done) != len(view["photos"]):
        sys.exit("only %d of %d photos done: %s" % (len(done), len(view["photos"]), view["counts"]))
    return view, max(p["updated_at"] for p in done) / 1000


def measure(base, photos, view_samples=VIEW_SAMPLES):
    """Uploads the photos to one job at a running web tier and follows it to the end."""
    uploaded = {}
    started = time.time()
    job, token = None, None
    for at in range(0, len(photos), BATCH):
        batch = [("photos", "p%05d.jpg" % (at + i), data) for i, data in enumerate(photos[at:at + BATCH])]
        sent = time.time()
        if job is None:
            content_type, body = multipart([("recipe", json.dumps(RECIPE))], batch)
            reply = request("POST", base + "/api/v1/jobs", body, {"Content-Type": content_type})
            job, token = reply["id"], reply["owner_token"]
        else:
            content_type, body = multipart([], batch)
            reply = request("POST", "%s/api/v1/jobs/%s/photos" % (base, job), body,
                            {"Content-Type": content_type, "X-Owner-Token": token})
        for photo in reply["photos"]:
            uploaded[photo["id"]] = sent
    view, finished = wait_until_finished(base, job)
    latencies = [p["updated_at"] / 1000 - uploaded[p["id"]] for p in view["photos"]]
    # The job view's latency, each request after the web tier's 0.5 s refresh window so
    # that every one reads the store (a change-log listing), as a page polling it does.
    views = []
    for _ in range(view_samples):
        time.sleep(0.6)
        sent = time.perf_counter()
        request("GET", "%s/api/v1/jobs/%s" % (base, job))
        views.append(time.perf_counter() - sent)
    return {"photos_per_s": len(photos) / (finished - started),
            "p50": percentile(latencies, 50), "p95": percentile(latencies, 95), "p99": percentile(latencies, 99),
            "view_p50_ms": 1000 * percentile(views, 50) if views else None,
            "view_p95_ms": 1000 * percentile(views, 95) if views else None}


def start_stack(darkroom, backend, tmp, name, web_args, workers, serve=False):
    """Starts web, status and `workers` one-slot workers on a fresh data directory (or a
    fresh bucket and queue prefix on LocalStack); returns (base URL, processes, data dir).
    With `serve`, one `darkroom serve` process with `workers` slots instead (the README's
    first command), its threads not limited."""
    data = tempfile.mkdtemp(dir=tmp)
    env = dict(os.environ, DARKROOM_LOG="warn", RAYON_NUM_THREADS="1")
    common = ["--data-dir", data]
    if backend == "localstack":
        tag = "%s%08x" % (name[:4], random.getrandbits(32))
        env.update(AWS_ENDPOINT_URL=os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"),
                   AWS_REGION="us-east-1", AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test")
        common = ["--backend", "aws", "--bucket", tag, "--queue-prefix", tag]
        subprocess.run([darkroom, "setup"] + common, env=env, check=True, stdout=subprocess.DEVNULL)
    log = open(os.path.join(tmp, "darkroom-%s.log" % name), "w")
    if serve:
        env.pop("RAYON_NUM_THREADS")
        process = start(darkroom, ["serve", "--listen", "127.0.0.1:0", "--concurrency", str(workers)] + web_args + common,
                        env, log)
        base = listening_url(process)
        time.sleep(1.0)
        return base, [process], data
    processes = [start(darkroom, ["web", "--listen", "127.0.0.1:0"] + web_args + common, env, log)]
    base = listening_url(processes[0])
    processes.append(start(darkroom, ["status"] + common, env, log))
    for _ in range(workers):
        processes.append(start(darkroom, ["worker", "--concurrency", "1", "--metrics-listen", "127.0.0.1:0"] + common, env, log))
    time.sleep(1.0)  # let the workers open their queues (not part of the measurement)
    return base, processes, data


def stop_stack(processes, data):
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        process.wait(timeout=30)
    shutil.rmtree(data, ignore_errors=True)


def run_service(darkroom, photos, workers, backend, tmp, serve=False):
    base, processes, data = start_stack(darkroom, backend, tmp, "%d-workers" % workers,
                                        ["--max-photos", str(len(photos) + 10)], workers, serve)
    try:
        return measure(base, photos, 0 if serve else VIEW_SAMPLES)
    finally:
        stop_stack(processes, data)


def run_fairness(darkroom, photos, small_photo, backend, every, tmp):
    base, processes, data = start_stack(darkroom, backend, tmp, "fairness",
                                        ["--trust-forwarded-for", "--rate-limit", "0", "--max-photos", str(len(photos) + 10)], 1)

    def create(client, files):
        content_type, body = multipart([("recipe", json.dumps(RECIPE))], files)
        return request("POST", base + "/api/v1/jobs", body, {"Content-Type": content_type, "X-Forwarded-For": client})

    try:
        started = time.time()
        reply = create("10.0.0.1", [("photos", "p00000.jpg", photos[0])])
        big, token = reply["id"], reply["owner_token"]
        for at in range(1, len(photos), BATCH):
            batch = [("photos", "p%05d.jpg" % (at + i), data) for i, data in enumerate(photos[at:at + BATCH])]
            content_type, body = multipart([], batch)
            request("POST", "%s/api/v1/jobs/%s/photos" % (base, big), body,
                    {"Content-Type": content_type, "X-Owner-Token": token})
        small = []  # (job id, sent)
        next_small = [time.time()]

        def send_small_job_when_due():
            if time.time() >= next_small[0]:
                sent = time.time()
                reply = create("10.1.%d.%d" % (len(small) // 250, len(small) % 250 + 1),
                               [("photos", "small.jpg", small_photo)])
                small.append((reply["id"], sent))
                next_small[0] = sent + every

        _, finished = wait_until_finished(base, big, send_small_job_when_due)
        latencies = [wait_until_finished(base, job)[1] - sent for job, sent in small]
        return {"small_jobs": len(latencies), "p50": percentile(latencies, 50), "p95": percentile(latencies, 95),
                "max": max(latencies), "big_photos_per_s": len(photos) / (finished - started)}
    finally:
        stop_stack(processes, data)


def run_process(darkroom, photos, parallel, tmp, threads="1"):
    folder = tempfile.mkdtemp(dir=tmp)
    paths = []
    for i, data in enumerate(photos):
        path = os.path.join(folder, "p%05d.jpg" % i)
        with open(path, "wb") as f:
            f.write(data)
        paths.append(path)
    out = tempfile.mkdtemp(dir=tmp)
    started = time.time()
    shares = [paths[i::parallel] for i in range(parallel)]
    running = [subprocess.Popen([darkroom, "process", "--recipe", json.dumps(RECIPE), "--out", out] + share,
                                stdout=subprocess.DEVNULL,
                                env=dict(os.environ, RAYON_NUM_THREADS=threads) if threads else os.environ)
               for share in shares]
    for process in running:
        if process.wait() != 0:
            sys.exit("darkroom process failed")
    return len(photos) / (time.time() - started)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus")
    parser.add_argument("--photos", type=int, default=500)
    parser.add_argument("--backend", choices=["local", "localstack"], default="local")
    parser.add_argument("--darkroom", default=os.path.join(os.path.dirname(__file__), "..", "target", "release", "darkroom"))
    parser.add_argument("--fairness", action="store_true", help="measure one-photo jobs beside a big job instead")
    parser.add_argument("--base-url", help="measure a darkroom already running there (e.g. the compose stack) instead")
    parser.add_argument("--label", default="running service", help="the row's name with --base-url")
    parser.add_argument("--every", type=float, default=3.0, help="seconds between one-photo jobs (--fairness)")
    parser.add_argument("--serve", action="store_true",
                        help="one `darkroom serve` process with 1, then 2 slots, against one `darkroom process`")
    parser.add_argument("--min-mp", type=float, default=0, help="only the corpus's JPEGs of at least this many megapixels")
    parser.add_argument("--max-mp", type=float, default=1e9, help="only those of at most this many megapixels")
    parser.add_argument("--only", choices=["baseline", "progressive"], help="only the corpus's JPEGs of that kind")
    parser.add_argument("--recipe", help="the recipe as JSON (default: crop 4:3, sepia, fit 1024)")
    parser.add_argument("--runs", type=int, default=1, help="repeat each measurement this many times")
    args = parser.parse_args()
    if args.recipe:
        global RECIPE
        RECIPE = json.loads(args.recipe)
    corpus = []
    for f in sorted(glob.glob(os.path.join(args.corpus, "*.jpg"))):
        data = open(f, "rb").read()
        size = jpeg_megapixels(data)
        kind_wanted = args.only is None or size and size[1] == (args.only == "progressive")
        if size and args.min_mp <= size[0] <= args.max_mp and kind_wanted:
            corpus.append(data)
    if not corpus:
        sys.exit("no .jpg of %g-%g MP in %s" % (args.min_mp, args.max_mp, args.corpus))
    photos = [corpus[i % len(corpus)] for i in range(args.photos)]
    tmp = tempfile.mkdtemp(prefix="darkroom-load-")
    if args.base_url:
        result = measure(args.base_url.rstrip("/"), photos)
        print("| %s | %d | %.2f | %.2f | %.2f |" % (args.label, len(photos), result["photos_per_s"], result["p50"],
                                                 result["p95"]), flush=True)
        shutil.rmtree(tmp, ignore_errors=True)
        return
    if args.fairness:
        result = run_fairness(args.darkroom, photos, corpus[-1], args.backend, args.every, tmp)
        print("# fair sharing: a %d-photo job, one worker slot, a one-photo job every %.0f s; backend %s; recipe %s" % (
            len(photos), args.every, args.backend, json.dumps(RECIPE)))
        print("\n| build | one-photo jobs | upload→done p50 s | p95 s | max s | big job photos/s |")
        print("|---|---|---|---|---|---|")
        print("| %s | %d | %.2f | %.2f | %.2f | %.2f |" % (args.darkroom, result["small_jobs"], result["p50"], result["p95"],
                                                      result["max"], result["big_photos_per_s"]))
        shutil.rmtree(tmp, ignore_errors=True)
        return
    sizes = [jpeg_megapixels(p) for p in photos]
    print("# darkroom load benchmark: %d photos (%d distinct, %.1f-%.1f MP, %d progressive), backend %s, %d cores, recipe %s" % (
        len(photos), len(corpus), min(s for s, _ in sizes), max(s for s, _ in sizes), sum(1 for _, p in sizes if p),
        args.backend, os.cpu_count(), json.dumps(RECIPE)))
    if args.serve:
        print("\n| setup | run | upload→done s | photos/s | upload→done p50 s | p95 s | `darkroom process` s | service ÷ process |")
        print("|---|---|---|---|---|---|---|---|")
        for workers in (1, 2):
            for run in range(args.runs):
                service = run_service(args.darkroom, photos, workers, args.backend, tmp, serve=True)
                # `darkroom process` as a user runs it: one process, its threads not limited.
                baseline = run_process(args.darkroom, photos, 1, tmp, threads=None)
                print("| serve --concurrency %d | %d | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f× |" % (
                    workers, run + 1, len(photos) / service["photos_per_s"], service["photos_per_s"], service["p50"],
                    service["p95"], len(photos) / baseline, service["photos_per_s"] / baseline), flush=True)
        shutil.rmtree(tmp, ignore_errors=True)
        return
    print("\n| setup | photos/s | upload→done p50 s | p95 s | p99 s | view of the job p50 / p95 ms | `darkroom process` photos/s | service ÷ process |")
    print("|---|---|---|---|---|---|---|---|")
    results = {}
    for workers in (1, 2):
        service = run_service(args.darkroom, photos, workers, args.backend, tmp)
        baseline = run_process(args.darkroom, photos, workers, tmp)
        results[workers] = service
        print("| %s, %d worker process%s | %.2f | %.2f | %.2f | %.2f | %.1f / %.1f | %.2f (%d in parallel) | %.2f× |" % (
            args.backend, workers, "" if workers == 1 else "es", service["photos_per_s"], service["p50"],
            service["p95"], service["p99"], service["view_p50_ms"], service["view_p95_ms"], baseline, workers,
            service["photos_per_s"] / baseline), flush=True)
    print("\nscaling: 2 worker processes ÷ 1 = %.2f×" % (results[2]["photos_per_s"] / results[1]["photos_per_s"]))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
