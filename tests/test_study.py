"""The loop as files: the tiny study end to end, per-cycle CLI, kill -9 and resume, bad configs."""
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "collapse_diffusion"]


def make_study(config, run, **kw):
    cmd = ["make", "-s", "-C", str(ROOT), "study", f"CONFIG={config}", f"RUN={run}", "INSTALLED=",
           f"CD={sys.executable} -m collapse_diffusion"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, **kw)


def rows(run):
    return [json.loads(l) for l in (Path(run) / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_tiny_study_report_and_kill9_resume(tmp_path, tiny_config):
    ref = tmp_path / "ref"
    p = make_study(tiny_config, ref)
    assert p.wait() == 0, p.stderr.read()[-2000:]
    reference = (ref / "metrics.jsonl").read_text()
    r = rows(ref)
    assert len(r) == 2 * 3 * 3 and {x["paradigm"] for x in r} == {"replace", "accumulate-subsample"}
    assert all(x["n_generated"] == 24 for x in r)
    acc = [x for x in r if x["paradigm"] == "accumulate-subsample" and x["arm"] == "vanilla"]
    assert [round(x["real_share"], 3) for x in sorted(acc, key=lambda x: x["cycle"])] == [1.0, 0.5, 0.333]
    report = (ref / "report.md").read_text()
    assert "Pearson r" in report and "FD (classifier-digits)" in report
    assert (ref / "plots" / "gs_vs_entropy.png").exists() and (ref / "plots" / "replace_samples.png").exists()

    run = tmp_path / "killed"
    rng = random.Random(0)
    for kill_at in sorted(rng.uniform(2.0, 25.0) for _ in range(4)):
        p = make_study(tiny_config, run)
        time.sleep(kill_at)
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    p = make_study(tiny_config, run)
    assert p.wait() == 0, p.stderr.read()[-2000:]
    assert (run / "metrics.jsonl").read_text() == reference


@pytest.mark.slow
def test_cycle_command_and_config_guard(tmp_path, tiny_config):
    run = tmp_path / "r"
    subprocess.run([*CLI, "init", tiny_config, "--run-dir", run], check=True, capture_output=True)
    p = subprocess.run([*CLI, "cycle", run, "replace/greedy", "2"], capture_output=True, text=True)
    assert p.returncode == 2 and "run cycle 1 first" in p.stderr
    p = subprocess.run([*CLI, "cycle", run, "replace/greedy", "1"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-1500:]
    assert (run / "replace" / "greedy" / "cycle_02" / "train.npz").exists()
    assert (run / "shared" / "cycle_01" / "metrics.json").exists()
    p = subprocess.run([*CLI, "cycle", run, "greedy", "2"], capture_output=True, text=True)
    assert p.returncode == 2 and "replace/greedy" in p.stderr
    p = subprocess.run([*CLI, "run", tiny_config, "--run-dir", run, "--set", "seed=1"], capture_output=True, text=True)
    assert p.returncode == 2 and "different config" in p.stderr


@pytest.mark.parametrize("override,words", [
    (["study.arms=[{name: a, selector: best}]"], "selector"),
    (["data.n=1797", "study.paradigms=[fresh]", "study.cycles=3"], "needs"),
    (["study.oversample=0.5", "study.arms=[{name: g, selector: greedy}]"], "oversample"),
    (["data.source=cifar10", "data.root=/nonexistent"], "CIFAR10"),
])
def test_bad_configs_fail_before_training(tmp_path, tiny_config, override, words):
    run = tmp_path / "r"
    args = [a for o in override for a in ("--set", o)]
    p = subprocess.run([*CLI, "run", tiny_config, "--run-dir", run, *args], capture_output=True, text=True)
    assert p.returncode == 2 and words in p.stderr and "Traceback" not in p.stderr
    assert not list(run.rglob("model"))
