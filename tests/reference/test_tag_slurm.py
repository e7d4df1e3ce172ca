"""test_tag_slurm.py — packaging/slurm/ on a real Slurm (issue 14).

The test starts its own cluster of one node in a temporary folder: munged
with a fresh key, slurmctld and slurmd (Debian's slurm-wlm) on localhost
with free ports, no cgroups and no accounting.  It submits
agriclip-tag.sbatch as a 4-task job array and agriclip-merge.sbatch
depending on it, waits for both, and checks that the merged run folder
equals a single-process `agriclip tag` run byte for byte.  Everything it
started is stopped at the end.  Needs root (the daemons run as root);
skipped with a message otherwise.  tools/install-deps.sh installs
slurm-wlm and munge.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import clip_twin  # noqa: E402
from test_tag import LABELS, write_images  # noqa: E402
from test_zeroshot import IMAGE_SIZE  # noqa: E402

AGRICLIP = os.environ.get("AGRICLIP")
SOURCE_DIR = os.environ.get("AGC_SOURCE_DIR", os.path.join(HERE, "..", ".."))
SLURM_DIR = os.path.join(SOURCE_DIR, "packaging", "slurm")
N_TASKS = 4


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalSlurm:
    """munged, slurmctld and slurmd of one node, all files under folder."""

    def __init__(self, folder):
        self.folder = folder
        self.node = socket.gethostname().split(".")[0]
        for sub in ("munge", "state", "spool", "log"):
            os.makedirs(os.path.join(folder, sub), mode=0o700)
        os.chmod(folder, 0o755)  # munged wants its socket's folders searchable
        self.key = os.path.join(folder, "munge", "munge.key")
        with open(self.key, "wb") as f:
            f.write(os.urandom(1024))
        os.chmod(self.key, 0o400)
        self.socket = os.path.join(folder, "munge", "socket")
        self.conf = os.path.join(folder, "slurm.conf")
        with open(self.conf, "w") as f:
            f.write(self.config())
        self.env = dict(os.environ, SLURM_CONF=self.conf)

    def config(self):
        d = self.folder
        return f"""ClusterName=agriclip-test
SlurmctldHost={self.node}(127.0.0.1)
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.socket}
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/log/slurmctld.log
SlurmdLogFile={d}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
SwitchType=switch/none
NodeName={self.node} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} State=UNKNOWN
PartitionName=agriclip-test Nodes={self.node} Default=YES MaxTime=INFINITE State=UP
"""

    def start(self):
        d = self.folder
        subprocess.run(["munged", "--force", f"--key-file={self.key}", f"--socket={self.socket}",
                        f"--pid-file={d}/munge/munged.pid", f"--log-file={d}/log/munged.log",
                        f"--seed-file={d}/munge/seed"], check=True, timeout=30)
        subprocess.run(["slurmctld", "-f", self.conf, "-i"], check=True, env=self.env, timeout=30)
        subprocess.run(["slurmd", "-f", self.conf], check=True, env=self.env, timeout=30)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            proc = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True,
                                  env=self.env)
            if proc.returncode == 0 and proc.stdout.strip() in ("idle", "mixed"):
                return
            time.sleep(0.5)
        raise AssertionError("the Slurm node did not come up:\n" + self.logs())

    def logs(self):
        text = ""
        for name in ("slurmctld.log", "slurmd.log", "munged.log"):
            path = os.path.join(self.folder, "log", name)
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    text += f"--- {name}\n" + "".join(f.readlines()[-20:])
        return text

    def stop(self):
        subprocess.run(["scontrol", "shutdown"], env=self.env, capture_output=True, timeout=30)
        for pid_file in ("slurmd.pid", "slurmctld.pid", "munge/munged.pid"):
            path = os.path.join(self.folder, pid_file)
            deadline = time.monotonic() + 10
            while os.path.exists(path) and time.monotonic() < deadline:
                try:
                    with open(path) as f:
                        pid = int(f.read().strip() or 0)
                    os.kill(pid, signal.SIGTERM if time.monotonic() < deadline - 5
                            else signal.SIGKILL)
                except (ValueError, ProcessLookupError):
                    break
                time.sleep(0.2)

    def sbatch(self, *args):
        proc = subprocess.run(["sbatch", "--parsable", *args], capture_output=True, text=True,
                              env=self.env, cwd=self.folder, timeout=60)
        if proc.returncode != 0:
            raise AssertionError(f"sbatch {args}: {proc.stderr}")
        return proc.stdout.strip().split(";")[0]

    def wait(self, job_ids, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc = subprocess.run(["squeue", "-h", "-j", ",".join(job_ids)], capture_output=True,
                                  text=True, env=self.env)
            if proc.returncode == 0 and not proc.stdout.strip():
                return
            time.sleep(1)
        raise AssertionError(f"jobs {job_ids} still queued after {timeout} s:\n" + self.logs())


@unittest.skipUnless(AGRICLIP, "AGRICLIP (path of the built agriclip) is not set")
@unittest.skipUnless(os.geteuid() == 0,
                     "the Slurm test starts munged, slurmctld and slurmd as root: run it as root")
class SlurmArray(unittest.TestCase):
    def test_array_and_merge_equal_one_run(self):
        for program in ("munged", "slurmctld", "slurmd", "sbatch"):
            self.assertIsNotNone(shutil.which(program),
                                 f"{program} is missing: tools/install-deps.sh installs "
                                 "slurm-wlm and munge")
        tmp = tempfile.mkdtemp(prefix="agc-slurm-")
        self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
        model = os.path.join(tmp, "model")
        clip_twin.make_model(model, seed=51, image_size=IMAGE_SIZE)
        labels = os.path.join(tmp, "labels.json")
        with open(labels, "w", encoding="utf-8") as f:
            json.dump(LABELS, f)
        src = os.path.join(tmp, "photos, \"field\" 3")
        write_images(src, [f"{i:03d}.png" for i in range(24)] + ["row 2/a b.jpg"], seed=8)
        options = ["--model", model, "--labels", labels, "--recursive", "--top", "2"]
        single = os.path.join(tmp, "single")
        proc = subprocess.run([AGRICLIP, "tag", *options, "--out", single, src],
                              capture_output=True, text=True, timeout=600)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertNotIn("images", proc.stderr, "a short run off a terminal shows no progress")

        slurm = LocalSlurm(os.path.join(tmp, "slurm"))
        self.addCleanup(slurm.stop)
        slurm.start()
        run = os.path.join(tmp, "cluster run")
        slurm.env["AGRICLIP"] = AGRICLIP
        slurm.env["AGRICLIP_PROGRESS_INTERVAL"] = "0.000001"  # a line at every report
        array = slurm.sbatch(f"--array=0-{N_TASKS - 1}", "--output", f"{tmp}/tag-%a.out",
                             os.path.join(SLURM_DIR, "agriclip-tag.sbatch"), run, *options, src)
        merge = slurm.sbatch(f"--dependency=afterok:{array}", "--output", f"{tmp}/merge.out",
                             os.path.join(SLURM_DIR, "agriclip-merge.sbatch"), run,
                             str(N_TASKS))
        slurm.wait([array, merge], timeout=300)
        outputs = ""
        for name in sorted(os.listdir(tmp)):
            if name.endswith(".out"):
                with open(os.path.join(tmp, name)) as f:
                    outputs += f"--- {name}\n{f.read()}"
        self.assertTrue(os.path.exists(os.path.join(run, "results.jsonl")),
                        outputs + slurm.logs())
        for i in range(N_TASKS):  # the job logs show how far each task got
            with open(os.path.join(tmp, f"tag-{i}.out")) as f:
                self.assertRegex(f.read(), r"(?m)^agriclip: \d+/\d+ images", outputs)
            with open(os.path.join(f"{run}.shard-{i}", "run.json")) as f:
                self.assertEqual(json.load(f)["shard"], {"index": i, "count": N_TASKS})
        for name in ("run.json", "results.jsonl"):
            with open(os.path.join(single, name), "rb") as a, open(os.path.join(run, name),
                                                                   "rb") as b:
                self.assertEqual(b.read(), a.read(), name)


if __name__ == "__main__":
    unittest.main()
