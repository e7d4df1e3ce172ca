"""`agriclip models list | show | pull` against a local server in the Hugging
Face URL layout ({base}/{repository}/resolve/{revision}/{path}): downloads,
resumes after a dropped connection (with an HTTP Range request), restarts
when the server ignores the Range, refuses a wrong checksum, reports 404s,
offline and full disks, sends HF_TOKEN to the Hub but not to the CDN it
redirects to, and `--model NAME` finding the pulled folder.

The expected checksums are computed here with hashlib from the bytes the
server serves; the tokenizer files are the real CLIP vocabulary."""

import hashlib
import http.server
import json
import os
import random
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import unittest

AGRICLIP = os.environ["AGRICLIP"]
VOCAB = os.path.join(os.environ["AGC_SHARED_DIR"], "clip-vocab")
SERVER_LIFETIME_S = 600  # the servers stop by themselves after this


def blob(size, seed):
    return random.Random(seed).randbytes(size)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


class Hub(http.server.ThreadingHTTPServer):
    """Serves self.files ({url path: bytes}) with Range support; per-path modes
    in self.cut ({path: [bytes per response, responses to cut]}), self.corrupt,
    self.ignore_range, self.redirect ({path: url}) and self.need_token
    ({path: token}).  Every request is logged."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.files, self.cut, self.redirect, self.need_token = {}, {}, {}, {}
        self.corrupt, self.ignore_range = set(), set()
        self.log, self.lock = [], threading.Lock()
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True).start()
        self.timer = threading.Timer(SERVER_LIFETIME_S, self.shutdown)
        self.timer.daemon = True
        self.timer.start()

    def stop(self):
        self.timer.cancel()
        self.shutdown()
        self.server_close()

    def requests(self, path):
        with self.lock:
            return [r for r in self.log if r["path"] == path]


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        hub, path = self.server, self.path
        with hub.lock:
            hub.log.append({"path": path, "range": self.headers.get("Range"),
                            "auth": self.headers.get("Authorization")})
        token = hub.need_token.get(path)
        if token and self.headers.get("Authorization") != f"Bearer {token}":
            self.send_response(401)
            self.send_header("X-Error-Message", "Access to this test repository is restricted")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if path in hub.redirect:
            self.send_response(302)
            self.send_header("Location", hub.redirect[path])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if path not in hub.files:
            body = b"Entry not found"
            self.send_response(404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        data = hub.files[path]
        if path in hub.corrupt:
            data = bytes(b ^ 0x5A for b in data)
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if match and path not in hub.ignore_range:
            start = int(match.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with hub.lock:
            cut = hub.cut.get(path)
            if cut and cut[1] > 0:
                cut[1] -= 1
                body = body[:cut[0]]
            else:
                cut = None
        self.wfile.write(body)
        if cut:  # drop the connection mid-file
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True


def run(*args, env=None):
    return subprocess.run([AGRICLIP, *args], capture_output=True, timeout=120, env=env)


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ModelsPull(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="agc-pull-")
        cls.hub, cls.cdn = Hub(), Hub()
        with open(os.path.join(VOCAB, "vocab.json"), "rb") as f:
            cls.vocab = f.read()
        with open(os.path.join(VOCAB, "merges.txt"), "rb") as f:
            cls.merges = f.read()
        cls.blob = blob(400_000, seed=1)
        cls.notes = b"no checksum for this one\n"
        cls.manual = blob(5_000, seed=2)

        def entry(name, files, **extra):
            return {"name": name, "title": f"test model {name}", "family": "hf-clip",
                    "repository": f"test/{name}", "revision": "main",
                    "licence": "MIT", "good_for": "tests", "files": files, **extra}

        def known(path, data):
            return {"path": path, "size": len(data), "sha256": sha256(data)}

        blob_file = known("blob.bin", cls.blob)
        catalogue = {"format": 1, "models": [
            entry("tiny", [known("vocab.json", cls.vocab), known("merges.txt", cls.merges),
                           {"path": "sub/notes.txt", "size": None, "sha256": None}],
                  unverified=["licence"]),
            entry("resume", [blob_file]),
            entry("resume-later", [blob_file]),
            entry("norange", [blob_file]),
            entry("corrupt", [known("vocab.json", cls.vocab), blob_file]),
            entry("missing", [known("vocab.json", cls.vocab),
                              {"path": "absent.bin", "size": None, "sha256": None}]),
            entry("gated", [blob_file]),
            entry("diskfull", [blob_file]),
            entry("manual", [known("vocab.json", cls.vocab),
                             {"path": "Weights/by-hand.pth", "manual": "ask the authors",
                              "size": len(cls.manual), "sha256": sha256(cls.manual)}]),
        ]}
        for model in catalogue["models"]:
            for f in model["files"]:
                data = {"vocab.json": cls.vocab, "merges.txt": cls.merges,
                        "sub/notes.txt": cls.notes, "blob.bin": cls.blob}.get(f["path"])
                if data is not None:
                    cls.hub.files[cls.hub_path(model["name"], f["path"])] = data
        cls.catalogue = os.path.join(cls.tmp, "catalogue.json")
        with open(cls.catalogue, "w") as f:
            json.dump(catalogue, f)

        # gated: the Hub wants the token, then redirects to a CDN on another port
        gated = cls.hub_path("gated", "blob.bin")
        cls.hub.need_token[gated] = "secret-token"
        cls.hub.redirect[gated] = cls.cdn.url + "/cdn/blob.bin"
        cls.cdn.files["/cdn/blob.bin"] = cls.blob

    @classmethod
    def tearDownClass(cls):
        cls.hub.stop()
        cls.cdn.stop()
        shutil.rmtree(cls.tmp)

    @staticmethod
    def hub_path(name, path):
        return f"/test/{name}/resolve/main/{path}"

    def setUp(self):
        self.work = tempfile.mkdtemp(dir=self.tmp)
        self.dir = os.path.join(self.work, "models")
        self.env = dict(os.environ, AGRICLIP_CATALOGUE=self.catalogue,
                        AGRICLIP_HUB_URL=self.hub.url,
                        XDG_DATA_HOME=os.path.join(self.work, "data"))
        self.env.pop("HF_TOKEN", None)

    def pull(self, name, *extra, env=None):
        return run("models", "pull", name, "--dir", self.dir, *extra, env=env or self.env)

    def assertPulled(self, result, name, files):
        stderr = result.stderr.decode()
        self.assertEqual(result.returncode, 0, stderr)
        folder = os.path.join(self.dir, name)
        self.assertEqual(result.stdout.decode(), folder + "\n")
        for path, data in files.items():
            with open(os.path.join(folder, path), "rb") as f:
                self.assertEqual(sha256(f.read()), sha256(data), path)
        leftovers = [n for n in os.listdir(self.dir) if n != name]
        self.assertEqual(leftovers, [], "the staging folder is gone")
        return stderr

    def assertNothingComplete(self, name):
        """The model's folder does not exist and no file looks finished."""
        self.assertFalse(os.path.exists(os.path.join(self.dir, name)))
        staging = os.path.join(self.dir, f".{name}.partial")
        return staging

    def assertFails(self, result, *fragments):
        stderr = result.stderr.decode()
        self.assertEqual(result.returncode, 1, stderr)
        self.assertEqual(result.stdout, b"")
        for line in stderr.splitlines():
            self.assertTrue(line.startswith("agriclip: "), line)
        for fragment in fragments:
            self.assertIn(fragment, stderr)
        return stderr

    # ---- list and show --------------------------------------------------

    def test_list(self):
        result = run("models", "list", "--dir", self.dir, env=self.env)
        self.assertEqual(result.returncode, 0, result.stderr)
        rows = [line.split(None, 3) for line in result.stdout.decode().splitlines()]
        self.assertEqual(rows[0], ["NAME", "FAMILY", "PULLED", "TITLE"])
        self.assertEqual([r[0] for r in rows[1:]],
                         ["tiny", "resume", "resume-later", "norange", "corrupt", "missing",
                          "gated", "diskfull", "manual"])
        self.assertEqual(rows[1], ["tiny", "hf-clip", "no", "test model tiny"])
        self.assertPulled(self.pull("tiny"), "tiny", {})
        result = run("models", "list", "--dir", self.dir, env=self.env)
        self.assertIn(["tiny", "hf-clip", "yes", "test model tiny"],
                      [line.split(None, 3) for line in result.stdout.decode().splitlines()])

    def test_show(self):
        result = run("models", "show", "tiny", "--dir", self.dir, env=self.env)
        self.assertEqual(result.returncode, 0, result.stderr)
        out = result.stdout.decode()
        self.assertIn("family:    hf-clip", out)
        self.assertIn(f"source:    {self.hub.url}/test/tiny (revision main)", out)
        self.assertRegex(out, r"licence:\s+MIT\s+\[unverified\]")
        self.assertIn(f"from    {self.hub.url}/test/tiny/resolve/main/vocab.json", out)
        self.assertIn(f"size    {len(self.vocab)} bytes", out)
        self.assertIn(f"sha256  {sha256(self.vocab)}", out)
        # sub/notes.txt has neither: show says so
        notes = out[out.index("sub/notes.txt"):]
        self.assertRegex(notes, r"size\s+unknown\s+sha256\s+unknown")
        self.assertIn("not in the catalogue", out)
        self.assertIn(f"{os.path.join(self.dir, 'tiny')} (not pulled)", out)

    def test_unknown_name(self):
        self.assertFails(run("models", "show", "nope", env=self.env), "nope", "known: tiny")

    def test_bad_catalogue(self):
        bad = os.path.join(self.work, "bad.json")
        with open(bad, "w") as f:
            json.dump({"format": 1, "models": [{"name": "x", "title": "x", "family": "hf-clip",
                                                "repository": "a/b",
                                                "files": [{"path": "../escape"}]}]}, f)
        env = dict(self.env, AGRICLIP_CATALOGUE=bad)
        self.assertFails(run("models", "list", env=env), "bad.json", "files[0]", "path")

    # ---- pull -----------------------------------------------------------

    def test_full_download(self):
        stderr = self.assertPulled(self.pull("tiny"), "tiny",
                                   {"vocab.json": self.vocab, "merges.txt": self.merges,
                                    "sub/notes.txt": self.notes})
        self.assertIn(f"sha256 {sha256(self.vocab)} (matches the catalogue)", stderr)
        # the catalogue knows neither size nor digest of notes: only the server's size checks it
        self.assertIn(f"sha256 {sha256(self.notes)} (size matches what the server announced; "
                      "no SHA-256 to check)", stderr)
        self.assertEqual(sorted(os.listdir(os.path.join(self.dir, "tiny"))),
                         ["merges.txt", "sub", "vocab.json"])
        # pulling again changes nothing
        again = self.pull("tiny")
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertIn(b"already pulled", again.stderr)

    def test_resume_after_drop(self):
        path = self.hub_path("resume", "blob.bin")
        self.hub.cut[path] = [150_000, 1]
        self.assertPulled(self.pull("resume"), "resume", {"blob.bin": self.blob})
        ranges = [r["range"] for r in self.hub.requests(path)]
        self.assertEqual(ranges, [None, "bytes=150000-"])

    def test_resume_in_a_later_run(self):
        path = self.hub_path("resume-later", "blob.bin")
        self.hub.cut[path] = [100_000, 3]  # every attempt of the first run is cut
        result = self.pull("resume-later")
        self.assertFails(result, "run the same command again to resume")
        staging = self.assertNothingComplete("resume-later")
        self.assertEqual(sorted(os.listdir(staging)), ["blob.bin.part"])
        self.assertEqual(os.path.getsize(os.path.join(staging, "blob.bin.part")), 300_000)
        self.assertPulled(self.pull("resume-later"), "resume-later", {"blob.bin": self.blob})
        ranges = [r["range"] for r in self.hub.requests(path)]
        self.assertEqual(ranges, [None, "bytes=100000-", "bytes=200000-", "bytes=300000-"])

    def test_server_ignoring_range_restarts(self):
        path = self.hub_path("norange", "blob.bin")
        self.hub.ignore_range.add(path)
        self.hub.cut[path] = [120_000, 1]
        self.assertPulled(self.pull("norange"), "norange", {"blob.bin": self.blob})
        self.assertEqual([r["range"] for r in self.hub.requests(path)], [None, "bytes=120000-"])

    def test_checksum_mismatch(self):
        self.hub.corrupt.add(self.hub_path("corrupt", "blob.bin"))
        stderr = self.assertFails(self.pull("corrupt"), "blob.bin", "SHA-256 mismatch",
                                  sha256(self.blob))
        self.assertNotIn("trying again", stderr)
        staging = self.assertNothingComplete("corrupt")
        # the good file may stay for the next run; the bad one is gone entirely
        left = sorted(os.listdir(staging)) if os.path.isdir(staging) else []
        self.assertEqual(left, ["vocab.json"])

    def test_not_found(self):
        url = f"{self.hub.url}/test/missing/resolve/main/absent.bin"
        stderr = self.assertFails(self.pull("missing"), url, "not found (HTTP 404)")
        self.assertNotIn("trying again", stderr)
        self.assertNothingComplete("missing")

    def test_offline(self):
        env = dict(self.env, AGRICLIP_HUB_URL=f"http://127.0.0.1:{closed_port()}")
        stderr = self.assertFails(self.pull("tiny", env=env), "cannot reach", "by hand")
        folder = os.path.join(self.dir, "tiny")
        for path in ("vocab.json", "merges.txt", os.path.join("sub", "notes.txt")):
            self.assertIn(os.path.join(folder, path), stderr)
        self.assertFalse(os.path.exists(self.dir) and os.listdir(self.dir))

    def test_token_goes_to_the_hub_only(self):
        path = self.hub_path("gated", "blob.bin")
        denied = self.assertFails(self.pull("gated"), "HTTP 401", "HF_TOKEN",
                                  "Access to this test repository is restricted")
        self.assertNotIn("trying again", denied)
        env = dict(self.env, HF_TOKEN="secret-token")
        self.assertPulled(self.pull("gated", env=env), "gated", {"blob.bin": self.blob})
        self.assertEqual(self.hub.requests(path)[-1]["auth"], "Bearer secret-token")
        cdn = self.cdn.requests("/cdn/blob.bin")
        self.assertTrue(cdn)
        self.assertEqual([r["auth"] for r in cdn], [None] * len(cdn))

    @unittest.skipUnless(os.path.exists("/dev/full"), "needs /dev/full")
    def test_disk_full(self):
        staging = os.path.join(self.dir, ".diskfull.partial")
        os.makedirs(staging)
        os.symlink("/dev/full", os.path.join(staging, "blob.bin.part"))
        self.assertFails(self.pull("diskfull"), "blob.bin.part", "disk is full")
        self.assertFalse(os.path.exists(os.path.join(self.dir, "diskfull")))

    def test_manual_file(self):
        result = self.pull("manual")
        staging = os.path.join(self.dir, ".manual.partial")
        target = os.path.join(staging, "Weights", "by-hand.pth")
        self.assertFails(result, target, "ask the authors")
        self.assertNothingComplete("manual")
        with open(target, "wb") as f:
            f.write(self.manual)
        self.assertPulled(self.pull("manual"), "manual",
                          {"vocab.json": self.vocab, "Weights/by-hand.pth": self.manual})

    # ---- --model NAME ---------------------------------------------------

    def test_model_name_resolves_to_pulled_folder(self):
        result = run("models", "pull", "tiny", env=self.env)  # the default folder
        self.assertEqual(result.returncode, 0, result.stderr)
        folder = os.path.join(self.env["XDG_DATA_HOME"], "agriclip", "models", "tiny")
        self.assertEqual(result.stdout.decode(), folder + "\n")
        tokens = run("tokenize", "--model", "tiny", "a photo of a fox", env=self.env)
        self.assertEqual(tokens.returncode, 0, tokens.stderr)
        ids = [int(t) for t in tokens.stdout.split()]
        self.assertEqual(ids[:7], [49406, 320, 1125, 539, 320, 3240, 49407])
        # embed and classify look in the same folder (which has no weights)
        for args in (["embed", "--model", "tiny", "--text", "leaf"],
                     ["classify", "--model", "tiny", "--label", "leaf", self.work]):
            result = run(*args, env=self.env)
            self.assertEqual(result.returncode, 1, result.stderr)
            self.assertIn(folder.encode(), result.stderr)
        # an existing path wins over a pulled name
        os.mkdir(os.path.join(self.work, "tiny"))
        local = subprocess.run([AGRICLIP, "tokenize", "--model", "tiny", "fox"],
                               capture_output=True, timeout=60, env=self.env, cwd=self.work)
        self.assertEqual(local.returncode, 1)
        self.assertNotIn(folder.encode(), local.stderr)


if __name__ == "__main__":
    unittest.main()
