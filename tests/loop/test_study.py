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
from conftest import assert_user_error

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "collapse_diffusion"]


def make_study(config, run, **kw):
    cmd = ["make", "-s", "-C", str(ROOT), "study", f"CONFIG={config}", f"RUN={run}", "INSTALLED=",
           f"CD={sys.executable} -m collapse_diffusion"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, **kw)


def cut_config(tmp_path, tiny_config, study: str) -> Path:
    """tiny.yaml with its study section cut to ``study`` (YAML flow mapping), as a config file."""
    config = tmp_path / "cut.yaml"
    config.write_text(f"base: {tiny_config}\nstudy: {study}\n")
    return config


def rows(run):
    return [json.loads(line) for line in (Path(run) / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_tiny_study_and_report(tmp_path, tiny_config, cli):
    ref = tmp_path / "ref"
    cli("run", tiny_config, "--run-dir", ref)
    r = rows(ref)
    assert len(r) == 2 * 3 * 3 and {x["paradigm"] for x in r} == {"replace", "accumulate-subsample"}
    assert all(x["n_generated"] == 64 for x in r)
    assert all(x["membership_auc"] is not None for x in r if x["paradigm"] == "replace" or x["cycle"] == 1)
    assert all(x["held_out"] == 8 for x in r if x["paradigm"] == "replace" and x["cycle"] > 1)
    acc = [x for x in r if x["paradigm"] == "accumulate-subsample" and x["arm"] == "vanilla"]
    assert [round(x["real_share"], 3) for x in sorted(acc, key=lambda x: x["cycle"])] == [1.0, 0.5, 0.333]
    report = (ref / "report.md").read_text()
    assert "Pearson r" in report and "FD (classifier-digits)" in report
    assert (ref / "plots" / "gs_vs_entropy.png").exists() and (ref / "plots" / "replace_samples.png").exists()


@pytest.mark.slow
def test_kill9_anywhere_and_make_resumes_to_the_same_rows(tmp_path, tiny_config, cli):
    """`make study` killed with SIGKILL at three points inside the work, then run again, writes the
    rows of an uninterrupted run byte for byte. The study is the tiny one cut to one paradigm and two
    arms (each cycle is a process of its own under make: the kills are what is tested, not the size)."""
    config = cut_config(tmp_path, tiny_config, "{paradigms: [replace], arms: [{name: vanilla, selector: random}, "
                                                "{name: greedy, selector: greedy}]}")
    ref = tmp_path / "ref"
    cli("run", config, "--run-dir", ref, "--no-report")
    reference = (ref / "metrics.jsonl").read_text()
    run = tmp_path / "killed"
    rng = random.Random(0)
    # kill inside the study's own work: a little after a milestone file appears (a seeded delay), in
    # training, sampling or evaluation of a later cycle; each kill must land before the run ends
    milestones = ["shared/cycle_01/samples.npz", "replace/*/cycle_02/model", "*/*/cycle_03/train.npz"]
    for pattern in milestones:
        p = make_study(config, run)
        while p.poll() is None and not list(run.glob(pattern)):
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 0.5))
        assert p.poll() is None, f"the study ended before the kill at {pattern}"
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        assert not (run / "metrics.jsonl").exists()
    p = make_study(config, run)
    assert p.wait() == 0, p.stderr.read()[-2000:]
    assert (run / "metrics.jsonl").read_text() == reference


@pytest.mark.slow
def test_a_process_with_nothing_to_compute_imports_no_model_code(tmp_path, tiny_config, cli):
    """`run` on a finished study (the Makefile's last step) and `init` load neither torch nor diffusers:
    they only check files and merge rows, so they start in about a second, not the ~13 s the model
    code takes to import."""
    config = cut_config(tmp_path, tiny_config, "{cycles: 2, paradigms: [replace], arms: [{name: vanilla, "
                                                "selector: random}]}")
    run = tmp_path / "run"
    cli("run", config, "--run-dir", run, "--no-report")
    rows_before = (run / "metrics.jsonl").read_text()
    code = ("import sys\nfrom collapse_diffusion.cli import main\ntry:\n    main(sys.argv[1:])\n"
            "except SystemExit as e:\n"
            "    print(e.code, sorted(m for m in ('torch', 'diffusers') if m in sys.modules))\n")
    for args in (["run", str(config), "--run-dir", str(run), "--no-report"],
                 ["init", str(config), "--run-dir", str(run)]):
        out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT)
        assert out.stdout.strip().splitlines()[-1] == "0 []", out.stdout[-500:] + out.stderr[-2000:]
    assert (run / "metrics.jsonl").read_text() == rows_before


def _alive(pids) -> list[int]:
    return [w for w in pids if Path(f"/proc/{w}").exists() and "zombie" not in Path(f"/proc/{w}/status").read_text()]


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
@pytest.mark.parametrize("when", ["startup", "training"])
def test_workers_die_with_a_killed_study(tmp_path, tiny_config, when):
    """kill -9 of the study process (not its process group), while its workers are still starting
    or once they train, takes every process it started with it: none lives on to finish a training
    unseen and race the resumed run."""
    run = tmp_path / "r"
    p = subprocess.Popen(CLI + ["run", str(tiny_config), "--run-dir", str(run), "--set", "runtime.workers=2",
                                "--set", "train.steps=2000", "--no-report"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    children = lambda: [int(x) for x in subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True,  # noqa: E731
                                                       text=True).stdout.split()]
    try:
        deadline = time.time() + 120
        first = run / "shared" / "cycle_01"
        while not (children() if when == "startup" else
                   (first / "checkpoint").exists() or (first / "train_log.jsonl").exists()):
            assert p.poll() is None and time.time() < deadline, "the study never got there"
            time.sleep(0.05)
        workers = children()
        assert workers, "no worker processes"
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        session = lambda: [int(x) for x in subprocess.run(["pgrep", "-s", str(p.pid)], capture_output=True,  # noqa: E731
                                                          text=True).stdout.split()]
        deadline = time.time() + 60
        while _alive(workers + session()):
            assert time.time() < deadline, f"processes outlived the killed study: {_alive(workers + session())}"
            time.sleep(0.2)
    finally:
        os.killpg(p.pid, signal.SIGKILL) if p.poll() is None else None
        subprocess.run(["pkill", "-9", "-s", str(p.pid)], capture_output=True)


@pytest.mark.slow
def test_cycle_command_and_config_guard(tmp_path, tiny_config, cli):
    run = tmp_path / "r"
    cli("init", tiny_config, "--run-dir", run)
    assert_user_error(cli("cycle", run, "replace/greedy", "2", ok=False), "run cycle 1 first")
    cli("cycle", run, "replace/greedy", "1")
    assert (run / "replace" / "greedy" / "cycle_02" / "train.npz").exists()
    assert (run / "shared" / "cycle_01" / "metrics.json").exists()
    assert_user_error(cli("cycle", run, "greedy", "2", ok=False), "replace/greedy")
    assert_user_error(cli("run", tiny_config, "--run-dir", run, "--set", "seed=1", ok=False), "different config")
    assert_user_error(cli("report", run, ok=False), "not a finished run")


@pytest.mark.parametrize("override,words", [
    (["study.arms=[{name: a, selector: best}]"], "selector"),
    (["data.n=1797", "study.paradigms=[fresh]", "study.cycles=3"], "needs"),
    (["study.oversample=0.5", "study.arms=[{name: g, selector: greedy}]", "study.baseline=g"], "needs r >= 1"),
    (["study.arms=[{name: anchor1, real_anchor: 1}]"], "is not an arm"),
    (["data.source=cifar10", "data.root=/nonexistent"], "CIFAR10"),
])
def test_bad_configs_fail_before_training(tmp_path, tiny_config, override, words, cli):
    run = tmp_path / "r"
    args = [a for o in override for a in ("--set", o)]
    assert_user_error(cli("run", tiny_config, "--run-dir", run, *args, ok=False), words)
    assert not list(run.rglob("model"))
