"""The study as a SLURM job array on a real single-node SLURM (slurmctld, slurmd, munged from
Debian's packages), started here and stopped after: scripts/slurm_study.sh submits cycle 1, one
task per chain and the merge, and the merged metrics.jsonl equals a plain `run` byte for byte.
Without SLURM the test is skipped with the reason (`.ci/run` installs it)."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "collapse_diffusion"]
PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin", "/usr/local/sbin"])


def _which(name):
    return shutil.which(name, path=PATH)


def _port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _conf(d: Path, node: str, user: str) -> str:
    return f"""ClusterName=cdtest
SlurmctldHost={node}
SlurmctldPort={_port()}
SlurmdPort={_port()}
AuthType=auth/munge
AuthInfo=socket={d}/munge.socket
CredType=cred/munge
SlurmUser={user}
SlurmdUser={user}
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
NodeName={node} CPUs={os.cpu_count() or 1} RealMemory=1000 State=UNKNOWN
PartitionName=main Nodes={node} Default=YES MaxTime=INFINITE State=UP
"""


@pytest.fixture
def slurm(tmp_path):
    """A running single-node SLURM; its environment (SLURM_CONF, PATH) for sbatch and squeue."""
    tools = {n: _which(n) for n in ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scancel")}
    missing = [n for n, p in tools.items() if p is None]
    if missing:
        pytest.skip(f"SLURM is not installed here ({', '.join(missing)} not found); .ci/run installs slurm-wlm "
                    f"and munge with apt-get")
    d = tmp_path / "slurm"
    for sub in ("state", "spool"):
        (d / sub).mkdir(parents=True)
    key = d / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    node, user = socket.gethostname().split(".")[0], _user()
    (d / "slurm.conf").write_text(_conf(d, node, user))
    env = {**os.environ, "SLURM_CONF": str(d / "slurm.conf"), "PATH": PATH}
    started = []
    try:
        for cmd in ([tools["munged"], "--force", f"--socket={d}/munge.socket", f"--key-file={key}",
                     f"--pid-file={d}/munged.pid", f"--log-file={d}/munged.log", f"--seed-file={d}/munged.seed"],
                    [tools["slurmctld"], "-f", str(d / "slurm.conf")],
                    [tools["slurmd"], "-f", str(d / "slurm.conf"), "-N", node]):
            r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                pytest.skip(f"could not start {Path(cmd[0]).name}: {(r.stderr or r.stdout).strip()[-300:]}")
            started.append(d / f"{Path(cmd[0]).name}.pid")
        deadline = time.time() + 60
        while "idle" not in subprocess.run([tools["sinfo"], "-h", "-o", "%T"], env=env, capture_output=True,
                                           text=True).stdout:
            if time.time() > deadline:
                pytest.skip("SLURM started but its node never became idle: " + _tail(d / "slurmd.log"))
            time.sleep(0.5)
        yield env
    finally:
        subprocess.run([tools["scancel"], "-u", user], env=env, capture_output=True)
        for pid_file in reversed(started):
            _stop(pid_file)


def _user() -> str:
    import pwd
    return pwd.getpwuid(os.getuid()).pw_name


def _tail(path: Path) -> str:
    return path.read_text()[-600:] if path.exists() else f"({path.name} not written)"


def _stop(pid_file: Path) -> None:
    deadline = time.time() + 10
    while not pid_file.exists() and time.time() < deadline:
        time.sleep(0.1)
    if pid_file.exists():
        try:
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGTERM)
        except (ProcessLookupError, ValueError):
            pass


def _queue(env) -> list[str]:
    out = subprocess.run(["squeue", "-h", "-o", "%i %T %r"], env=env, capture_output=True, text=True)
    return out.stdout.split("\n")


@pytest.mark.slow
def test_slurm_array_merges_to_the_plain_run_byte_for_byte(slurm, tmp_path, cli):
    config = tmp_path / "study.yaml"
    config.write_text(f"base: {ROOT / 'configs' / 'tiny.yaml'}\n"
                      "study: {cycles: 2, seeds: [0, 1], paradigms: [replace, accumulate-subsample],\n"
                      "        arms: [{name: vanilla, selector: random}, {name: greedy, selector: greedy}]}\n")
    cli("run", config, "--run-dir", tmp_path / "plain", "--no-report")
    run = tmp_path / "array"
    env = {**slurm, "CD": " ".join(CLI)}
    out = subprocess.run(["bash", str(ROOT / "scripts" / "slurm_study.sh"), str(config), str(run)], env=env,
                         capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "8 tasks" in out.stdout, out.stdout  # 2 seeds x 2 paradigms x 2 arms
    deadline = time.time() + 900
    while any(line.strip() for line in _queue(env)):
        stuck = [line for line in _queue(env) if "DependencyNeverSatisfied" in line]
        logs = "\n".join(f"{p.name}: {p.read_text()[-500:]}" for p in sorted((run / "slurm").glob("*.out")))
        assert not stuck, f"a job failed, its dependants can never start: {stuck}\n{logs}"
        assert time.time() < deadline, f"the jobs did not finish: {_queue(env)}\n{logs}"
        time.sleep(1.0)
    assert (run / "metrics.jsonl").exists(), "\n".join(p.read_text()[-800:] for p in (run / "slurm").glob("*.out"))
    assert (run / "metrics.jsonl").read_text() == (tmp_path / "plain" / "metrics.jsonl").read_text()
    assert (run / "report.md").exists()
    tasks = sorted((run / "slurm").glob("chain-*.out"))
    assert len(tasks) == 8 and all("chains done" in t.read_text() for t in tasks)
