"""`agriclip models pull` against a hostile or broken server, for catalogue
entries without size or SHA-256 (as every shipped one): a body cut short
without Content-Length, an HTML error page, altered bytes, a server that
announces 10^12 bytes and sends without end, a 2 bytes/s drip.  Every case
ends with exit 1, one message naming the file, no model folder, and bounded
bytes and time; the sizes and digests the server announces are the Hugging
Face headers (X-Linked-Size, X-Linked-Etag).  A valid safetensors file and
JSON file, announced the same way, still pull.

The safetensors file is written here byte by byte from its specification;
digests are hashlib's."""

import hashlib
import http.server
import json
import os
import shutil
import struct
import subprocess
import tempfile
import threading
import time
import unittest

AGRICLIP = os.environ["AGRICLIP"]
SERVER_LIFETIME_S = 600


def safetensors_bytes(n_floats):
    """A valid safetensors file with one F32 tensor of n_floats values."""
    data = struct.pack(f"<{n_floats}f", *[i * 0.25 for i in range(n_floats)])
    header = json.dumps({"w": {"dtype": "F32", "shape": [n_floats],
                               "data_offsets": [0, len(data)]}}).encode()
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + data


MODEL = safetensors_bytes(75_000)  # 300 kB
CONFIG = json.dumps({"projection_dim": 32, "text_config": {"hidden_size": 64}}).encode()
HTML = b"<!DOCTYPE html><html><body><h1>Bad gateway</h1>" + b"x" * 2000 + b"</body></html>"


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.sent = {}  # path: body bytes written
        self.lock = threading.Lock()
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True).start()
        self.timer = threading.Timer(SERVER_LIFETIME_S, self.shutdown)
        self.timer.daemon = True
        self.timer.start()

    def stop(self):
        self.timer.cancel()
        self.shutdown()
        self.server_close()


class Handler(http.server.BaseHTTPRequestHandler):
    """/test/CASE/resolve/main/FILE: CASE says how the file is served."""
    protocol_version = "HTTP/1.0"  # no Content-Length means "until the connection closes"

    def log_message(self, *args):
        pass

    def send(self, data):
        self.wfile.write(data)
        with self.server.lock:
            self.server.sent[self.path] = self.server.sent.get(self.path, 0) + len(data)

    def hub_headers(self, data):
        self.send_header("X-Linked-Size", str(len(data)))
        self.send_header("X-Linked-Etag", f'"{hashlib.sha256(data).hexdigest()}"')

    def do_GET(self):
        case, name = self.path.split("/")[2], self.path.rsplit("/", 1)[1]
        data = {"model.safetensors": MODEL, "config.json": CONFIG}[name]
        try:
            self.serve(case, data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def serve(self, case, data):
        self.send_response(200)
        if case == "good":
            self.hub_headers(data)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.send(data)
        elif case == "short-announced":  # cut short, no Content-Length, the Hub's size
            self.hub_headers(data)
            self.end_headers()
            self.send(data[:len(data) // 2])
        elif case == "short-unannounced":  # cut short, nothing announced at all
            self.end_headers()
            self.send(data[:len(data) // 2])
        elif case == "html":  # an error page with status 200
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(HTML)))
            self.end_headers()
            self.send(HTML)
        elif case == "html-untyped":  # the same page, claiming to be bytes
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            self.send(HTML)
        elif case == "altered":  # one byte changed, the Hub's digest of the real file
            self.hub_headers(data)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.send(data[:-100] + bytes([data[-100] ^ 1]) + data[-99:])
        elif case in ("endless", "endless-unannounced"):
            if case == "endless":
                self.hub_headers(data)
            self.send_header("Content-Length", str(10**12))
            self.end_headers()
            chunk = b"\0" * 65536
            while True:
                self.send(chunk)
                if case == "endless-unannounced":
                    time.sleep(0.05)  # ~1.3 MB/s: the time limit, not the disk, ends it
        elif case == "drip":
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            for i in range(len(data)):
                self.send(data[i:i + 1])
                self.wfile.flush()
                time.sleep(0.5)


CASES = ["good", "short-announced", "short-unannounced", "html", "html-untyped", "altered",
         "endless", "endless-unannounced", "drip"]


class PullHostile(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="agc-pull-hostile-")
        cls.server = Server()
        models = []
        for case in CASES:
            for path in ("model.safetensors", "config.json"):
                models.append({"name": f"{case}-{path.split('.')[0]}", "title": case,
                               "family": "hf-clip", "repository": f"test/{case}",
                               "revision": "main", "licence": "MIT", "good_for": "tests",
                               "files": [{"path": path, "size": None, "sha256": None}]})
        cls.catalogue = os.path.join(cls.tmp, "catalogue.json")
        with open(cls.catalogue, "w") as f:
            json.dump({"format": 1, "models": models}, f)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        shutil.rmtree(cls.tmp)

    def setUp(self):
        self.work = tempfile.mkdtemp(dir=self.tmp)
        self.dir = os.path.join(self.work, "models")
        self.env = dict(os.environ, AGRICLIP_CATALOGUE=self.catalogue,
                        AGRICLIP_HUB_URL=self.server.url,
                        XDG_DATA_HOME=os.path.join(self.work, "data"))

    def pull(self, name, **env):
        start = time.monotonic()
        result = subprocess.run([AGRICLIP, "models", "pull", name, "--dir", self.dir],
                                capture_output=True, timeout=120, env=dict(self.env, **env))
        return result, time.monotonic() - start

    def assertRefused(self, name, *fragments, **env):
        result, seconds = self.pull(name, **env)
        stderr = result.stderr.decode()
        self.assertEqual(result.returncode, 1, stderr)
        self.assertEqual(result.stdout, b"")
        last = stderr.splitlines()[-1]
        self.assertTrue(last.startswith("agriclip: "), last)
        for fragment in fragments:
            self.assertIn(fragment, last)
        self.assertFalse(os.path.exists(os.path.join(self.dir, name)), "no complete folder")
        staging = os.path.join(self.dir, f".{name}.partial")
        if os.path.isdir(staging):  # what is left must not look finished
            for f in os.listdir(staging):
                self.assertTrue(f.endswith(".part") or f == ".lock", f)
        return last, seconds

    def test_valid_files_pull(self):
        for name, data in (("good-model", MODEL), ("good-config", CONFIG)):
            result, _ = self.pull(name)
            self.assertEqual(result.returncode, 0, result.stderr)
            path = os.path.join(self.dir, name, "model.safetensors" if "model" in name
                                else "config.json")
            with open(path, "rb") as f:
                self.assertEqual(f.read(), data)
            # checked against the digest the server announced, and said so
            self.assertIn(f"sha256 {hashlib.sha256(data).hexdigest()} (matches the SHA-256 the "
                          "server announced)", result.stderr.decode())

    def test_cut_short_with_the_hubs_size(self):
        for name in ("short-announced-model", "short-announced-config"):
            self.assertRefused(name, "where the server announced")

    def test_cut_short_with_nothing_announced(self):
        # only the contents can tell: the safetensors data and the JSON end early
        self.assertRefused("short-unannounced-model", "model.safetensors", "damaged")
        self.assertRefused("short-unannounced-config", "config.json", "damaged")

    def test_html_error_page(self):
        self.assertRefused("html-model", "web page")
        self.assertRefused("html-config", "web page")
        self.assertRefused("html-untyped-model", "model.safetensors", "damaged")
        self.assertRefused("html-untyped-config", "config.json", "damaged")

    def test_altered_bytes(self):
        digest = hashlib.sha256(MODEL).hexdigest()
        self.assertRefused("altered-model", "SHA-256 mismatch", digest)

    def test_endless_body_stops_at_the_announced_size(self):
        path = "/test/endless/resolve/main/model.safetensors"
        last, _ = self.assertRefused("endless-model", "announced 1000000000000 bytes")
        # refused on the headers: hardly any of the body was read
        part = os.path.join(self.dir, ".endless-model.partial", "model.safetensors.part")
        self.assertFalse(os.path.exists(part))
        self.assertLess(self.server.sent.get(path, 0), 64 << 20)

    def test_endless_body_ends_at_the_time_limit(self):
        _, seconds = self.assertRefused("endless-unannounced-model", "time limit",
                                        AGRICLIP_PULL_TIME_LIMIT="3")
        self.assertLess(seconds, 15)

    def test_drip_ends(self):
        _, seconds = self.assertRefused("drip-model", "stalled", "slower than 100 bytes/s",
                                        AGRICLIP_PULL_MIN_RATE="100",
                                        AGRICLIP_PULL_MIN_RATE_TIME="1")
        self.assertLess(seconds, 30)

    def test_bad_limit(self):
        result, _ = self.pull("good-model", AGRICLIP_PULL_TIME_LIMIT="soon")
        self.assertEqual(result.returncode, 1)
        self.assertIn(b"AGRICLIP_PULL_TIME_LIMIT=soon", result.stderr)


if __name__ == "__main__":
    unittest.main()
