"""Kill -9 at random points of `train` (half the kills inside the embedding
stage, with an empty embedding cache), `models pull` (against a loopback
server) and `pretrain`, then the same command again until it finishes:
every trial must end with output byte for byte that of an uninterrupted
run, and no file that existed before (data, model, a neighbour of the
output, another pulled model) may change.

AGC_KILL_TRIALS trials of each command (default 5, as in CI; the long run
outside CI: AGC_KILL_TRIALS=50).  The kill times are drawn from a seeded
generator (AGC_KILL_SEED, default 1) over the uninterrupted run's duration;
each test prints how its kills landed."""

import hashlib
import http.server
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import clip_twin  # noqa: E402
from test_train import IMAGE_SIZE, write_class_folders  # noqa: E402

AGRICLIP = os.environ.get("AGRICLIP")
TRIALS = int(os.environ.get("AGC_KILL_TRIALS", "5"))
SEED = int(os.environ.get("AGC_KILL_SEED", "1"))
MAX_RUNS = 8  # per trial: the kill, then runs to completion (a later run may be killed too)


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def snapshot(*roots):
    """{path: sha256} of every file under roots."""
    files = {}
    for root in roots:
        for folder, _, names in os.walk(root):
            for name in names:
                path = os.path.join(folder, name)
                files[path] = digest(path)
    return files


def count_entries(cache):
    return sum(name.endswith(".safetensors") for _, _, names in
               os.walk(os.path.join(cache, "agriclip", "embeddings")) for name in names)


def run_killed(args, env, delay, cached=None):
    """Runs args and kills it with SIGKILL after delay seconds, or (cached:
    a number) as soon as the embedding cache holds that many entries;
    returns whether it was killed (False: it finished first, status 0)."""
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    if cached is not None:
        while proc.poll() is None and count_entries(env["XDG_CACHE_HOME"]) < cached:
            time.sleep(0.001)
        delay = 0
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
    stderr = proc.communicate(timeout=600)[1].decode()
    if proc.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(f"{args[1]} failed with {proc.returncode}: {stderr}")
    return proc.returncode == -signal.SIGKILL


def run_to_end(test, args, env):
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
    test.assertEqual(proc.returncode, 0, proc.stderr)
    return proc.stderr


def killed_or_run(test, run, args, env, delay, cached=None):
    """The first run of a trial is killed (run_killed); the next ones run
    to the end.  Returns whether this run was killed."""
    if run == 0:
        return run_killed(args, env, delay, cached)
    run_to_end(test, args, env)
    return False


@unittest.skipUnless(AGRICLIP, "AGRICLIP (path of the built agriclip) is not set")
class KillResume(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="agc-kill-")
        cls.rng = random.Random(SEED)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def timed(self, args, env):
        start = time.monotonic()
        log = run_to_end(self, args, env)
        return time.monotonic() - start, log

    # ---- train ---------------------------------------------------------------

    def test_train(self):
        root = os.path.join(self.tmp, "train")
        model, data = os.path.join(root, "model"), os.path.join(root, "data")
        clip_twin.make_model(model, seed=51, image_size=IMAGE_SIZE)
        write_class_folders(data, {"rust": 40, "blight": 40, "healthy": 40}, seed=52)
        settings = ["--epochs", "40", "--batch-size", "8", "--checkpoint-every", "1",
                    "--seed", "7", "--threads", "2"]

        def command(out):
            return [AGRICLIP, "train", "--model", model, "--data", data, "--out", out, *settings]

        def fresh_env(name):
            cache = os.path.join(root, name)
            shutil.rmtree(cache, ignore_errors=True)
            return dict(os.environ, XDG_CACHE_HOME=cache)

        reference = os.path.join(root, "reference.safetensors")
        duration, _ = self.timed(command(reference), fresh_env("cache-reference"))
        want = digest(reference)
        landed = {"start-up": 0, "embedding": 0, "later": 0, "finished": 0}
        partial_batches = 0
        for trial in range(TRIALS):
            folder = os.path.join(root, f"trial-{trial}")
            os.makedirs(folder)
            neighbour = os.path.join(folder, "notes.txt")
            with open(neighbour, "w") as f:
                f.write("not agriclip's\n")
            out = os.path.join(folder, "adapter.safetensors")
            env = fresh_env(f"cache-{trial}")
            before = snapshot(model, data, folder)
            # even trials: inside the embedding stage, once 1 to 119 of the 120
            # images are cached (mostly mid-batch); odd ones: anywhere
            delay = self.rng.uniform(0.05, duration)
            at = self.rng.randint(1, 119) if trial % 2 == 0 else None
            for run in range(MAX_RUNS):
                if not killed_or_run(self, run, command(out), env, delay, at):
                    landed["finished"] += run == 0
                    break
                if run == 0:
                    cached = count_entries(env["XDG_CACHE_HOME"])
                    landed["start-up" if cached == 0 else "embedding" if cached < 120
                           else "later"] += 1
                    partial_batches += cached % 8 != 0
            self.assertEqual(digest(out), want, f"trial {trial} (killed after {delay:.2f} s)")
            self.assertEqual(snapshot(model, data, folder),
                             dict(before, **{out: want}), f"trial {trial}")
        print(f"\ntrain: {TRIALS} trials, first kills {landed}, {partial_batches} leaving a "
              f"partial batch cached (run {duration:.2f} s)", file=sys.stderr)
        self.assertGreaterEqual(landed["embedding"], TRIALS // 2 - 1)

    # ---- pretrain -------------------------------------------------------------

    def test_pretrain(self):
        from test_pretrain import PretrainTest
        root = os.path.join(self.tmp, "pretrain")
        os.makedirs(root)
        maker = PretrainTest()
        maker.tmp = root
        data = maker.shapes_data("data")

        def command(out):
            return PretrainTest.small_args(data, out, epochs=4)

        env = dict(os.environ)
        reference = os.path.join(root, "reference")
        duration, _ = self.timed(command(reference), env)
        want = snapshot(reference)
        want = {os.path.relpath(p, reference): d for p, d in want.items()}
        killed = 0
        for trial in range(TRIALS):
            folder = os.path.join(root, f"trial-{trial}")
            os.makedirs(folder)
            neighbour = os.path.join(folder, "notes.txt")
            with open(neighbour, "w") as f:
                f.write("not agriclip's\n")
            out = os.path.join(folder, "model")
            before = snapshot(data, folder)
            delay = self.rng.uniform(0.05, duration)
            for run in range(MAX_RUNS):
                if not killed_or_run(self, run, command(out), env, delay):
                    break
                killed += 1
                if os.path.exists(out):  # killed after the rename: finished (and refused again)
                    break
            got = {os.path.relpath(p, out): d for p, d in snapshot(out).items()}
            self.assertEqual(got, want, f"trial {trial} (killed after {delay:.2f} s)")
            self.assertEqual(sorted(os.listdir(folder)), ["model", "notes.txt"])
            after = snapshot(data, folder)
            self.assertEqual({p: d for p, d in after.items() if not p.startswith(out)},
                             before, f"trial {trial}")
        print(f"\npretrain: {TRIALS} trials, {killed} killed (run {duration:.2f} s)",
              file=sys.stderr)

    # ---- models pull -----------------------------------------------------------

    def test_pull(self):
        root = os.path.join(self.tmp, "pull")
        os.makedirs(root)
        files = {"config.json": json.dumps({"projection_dim": 8}).encode(),
                 "model.safetensors": safetensors_file(1 << 19),
                 "notes.txt": random.Random(3).randbytes(1 << 20)}
        server = Server(files)
        self.addCleanup(server.stop)
        catalogue = os.path.join(root, "catalogue.json")
        with open(catalogue, "w") as f:
            json.dump({"format": 1, "models": [
                {"name": "m", "title": "m", "family": "hf-clip", "repository": "test/m",
                 "revision": "main", "licence": "MIT", "good_for": "tests",
                 "files": [{"path": p, "size": None, "sha256": None} for p in files]}]}, f)
        env = dict(os.environ, AGRICLIP_CATALOGUE=catalogue, AGRICLIP_HUB_URL=server.url)

        def command(folder):
            return [AGRICLIP, "models", "pull", "m", "--dir", folder]

        duration, _ = self.timed(command(os.path.join(root, "reference")), env)
        killed = 0
        for trial in range(TRIALS):
            folder = os.path.join(root, f"trial-{trial}")
            other = os.path.join(folder, "other")  # a model pulled before
            os.makedirs(other)
            with open(os.path.join(other, "config.json"), "w") as f:
                f.write("{}")
            before = snapshot(folder)
            delay = self.rng.uniform(0.0, duration)
            for run in range(MAX_RUNS):
                if not killed_or_run(self, run, command(folder), env, delay):
                    break
                killed += 1
                self.assertFalse(os.path.exists(os.path.join(folder, "m")) and
                                 os.path.exists(os.path.join(folder, ".m.partial")))
            self.assertEqual(sorted(os.listdir(folder)), ["m", "other"])
            got = snapshot(os.path.join(folder, "m"))
            self.assertEqual({os.path.basename(p): d for p, d in got.items()},
                             {p: hashlib.sha256(b).hexdigest() for p, b in files.items()},
                             f"trial {trial} (killed after {delay:.2f} s)")
            self.assertEqual(snapshot(other), before)
        print(f"\npull: {TRIALS} trials, {killed} killed (run {duration:.2f} s)",
              file=sys.stderr)


def safetensors_file(n_floats):
    import struct
    data = struct.pack(f"<{n_floats}f", *[i % 97 * 0.5 for i in range(n_floats)])
    header = json.dumps({"w": {"dtype": "F32", "shape": [n_floats],
                               "data_offsets": [0, len(data)]}}).encode()
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + data


class Server(http.server.ThreadingHTTPServer):
    """Serves files at /test/m/resolve/main/NAME with the Hub's headers and
    Range support, about 4 MB/s, so that a kill lands mid-file."""
    daemon_threads = True

    def __init__(self, files):
        super().__init__(("127.0.0.1", 0), Handler)
        self.files = files
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def stop(self):
        self.shutdown()
        self.server_close()


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        data = self.server.files.get(self.path.rsplit("/", 1)[1])
        if data is None:
            self.send_error(404)
            return
        start = 0
        spec = self.headers.get("Range") or ""
        if spec.startswith("bytes=") and spec.endswith("-"):
            start = int(spec[6:-1])
        if start >= len(data):
            self.send_response(416)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.send_header("X-Linked-Size", str(len(data)))
        self.send_header("X-Linked-Etag", f'"{hashlib.sha256(data).hexdigest()}"')
        self.end_headers()
        try:
            for i in range(start, len(data), 1 << 16):
                self.wfile.write(data[i:i + (1 << 16)])
                time.sleep(0.015)
        except (BrokenPipeError, ConnectionResetError):
            pass


if __name__ == "__main__":
    unittest.main()
