"""A study as chains of jobs: names and --only, worker slots (one per GPU, CPU workers standing in),
any split of the chains (processes side by side, make -j) giving the same metrics.jsonl as `run`."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import assert_user_error

from collapse_diffusion.core.errors import UserError
from collapse_diffusion.loop.chains import chains, make_rules, parse_chains, placement
from collapse_diffusion.loop.experiment import load_config

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "collapse_diffusion"]
SMALL = ["study.cycles=2", "study.paradigms=[replace, accumulate-subsample]",
         "study.arms=[{name: vanilla, selector: random}, {name: greedy, selector: greedy}]"]


def _sets(overrides):
    return [a for o in overrides for a in ("--set", o)]


def test_chain_names_and_only(tiny_config):
    one = load_config(tiny_config)
    assert [c.name for c in chains(one)][:2] == ["0/replace/vanilla", "0/replace/greedy"] and len(chains(one)) == 6
    assert [c.name for c in parse_chains(one, ["replace/greedy,0/replace/greedy", "shared"])] == [
        "0/replace/greedy", "0/shared"]
    many = load_config(tiny_config, ["study.seeds=[3,4]", "study.paradigms=[replace]"])
    assert [c.name for c in parse_chains(many, ["4/tdf", "shared"])] == ["4/replace/tdf", "3/shared", "4/shared"]
    for bad in ("replace/tdf", "5/replace/tdf", "4/replace/nope", "4/accumulate/tdf"):
        with pytest.raises(UserError, match="is not a chain of this study; chains: 3/replace/vanilla"):
            parse_chains(many, [bad])


def test_make_rules_chain_each_cycle_on_the_one_before(tiny_config):
    cfg = load_config(tiny_config, ["study.seeds=[0,1]"])
    rules = make_rules(cfg, "R")
    assert "R/seed_1/replace/tdf/cycle_03/metrics.json: R/seed_1/replace/tdf/cycle_02/metrics.json" in rules
    assert "R/seed_1/replace/tdf/cycle_02/metrics.json: R/seed_1/shared/cycle_01/metrics.json" in rules
    assert "R/seed_0/shared/cycle_01/metrics.json: | R/config.yaml" in rules
    targets = next(line for line in rules.splitlines() if line.startswith("CHAIN_TARGETS"))
    assert len(targets.split()) - 2 == 12 and "JOBS ?= 1" in rules  # tiny.yaml: runtime.workers 1


def test_placement_one_slot_per_gpu_or_worker(tiny_config):
    auto = load_config(tiny_config, ["runtime.workers=0", "runtime.device=auto"])
    assert placement(auto, jobs=6, gpus=4) == ["cuda:0", "cuda:1", "cuda:2", "cuda:3"]
    assert placement(auto, jobs=3, gpus=4) == ["cuda:0", "cuda:1", "cuda:2"]  # never more slots than jobs
    assert placement(load_config(tiny_config, ["runtime.workers=2"]), jobs=6, gpus=4) == ["cuda:0", "cuda:1"]
    assert placement(auto, jobs=6, gpus=1) == ["main"]  # one GPU: one model at a time, in the study process
    cpu = load_config(tiny_config, ["runtime.workers=3", "runtime.device=cpu"])
    assert placement(cpu, jobs=6, gpus=4) == ["cpu:0", "cpu:1", "cpu:2"]
    assert placement(cpu, jobs=1, gpus=0) == ["main"]


def test_a_gpu_slot_is_the_only_gpu_its_worker_sees(monkeypatch):
    from collapse_diffusion.loop.driver import pin
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    pin("cpu:1")
    assert "CUDA_VISIBLE_DEVICES" not in os.environ
    pin("cuda:2")
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "2"


def test_the_slot_travels_with_the_study_not_a_global(tmp_path):
    """timings.jsonl records the slot of the Study that ran the stage (set per worker job)."""
    from collapse_diffusion.core.layout import CycleFiles
    from collapse_diffusion.loop.stages import timed
    files = CycleFiles(tmp_path)
    with timed(files, "train", "cuda:2"):
        pass
    assert _slots(tmp_path) == {"cuda:2"}


def _slots(run: Path) -> set[str]:
    return {json.loads(line).get("slot") for t in run.rglob("timings.jsonl") for line in t.read_text().splitlines()}


@pytest.mark.slow
def test_chains_side_by_side_and_worker_slots_give_the_plain_run(tmp_path, tiny_config, cli):
    """Two processes on different chains of one run directory at once, then the merge; and the
    same study on two CPU worker slots (standing in for two GPUs): each equals `run` byte for byte."""
    cli("run", tiny_config, "--run-dir", tmp_path / "plain", "--no-report", *_sets(SMALL))
    plain = (tmp_path / "plain" / "metrics.jsonl").read_text()
    run = tmp_path / "split"
    jobs = [subprocess.Popen(CLI + ["run", str(tiny_config), "--run-dir", str(run), "--only", only, *_sets(SMALL)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for only in ("replace/vanilla,accumulate-subsample/greedy", "replace/greedy,accumulate-subsample/vanilla")]
    for j in jobs:
        out, err = j.communicate(timeout=600)
        assert j.returncode == 0, err[-2000:]
        assert "chains done" in out
    assert not (run / "metrics.jsonl").exists()  # chains alone do not merge
    assert_user_error(cli("run", tiny_config, "--run-dir", run, "--only", "replace/tdf", *_sets(SMALL), ok=False),
                      "not a chain of this study")
    cli("run", tiny_config, "--run-dir", run, "--no-report", *_sets(SMALL))
    assert (run / "metrics.jsonl").read_text() == plain
    assert len(list((run / "shared" / "cycle_01").glob("timings.jsonl"))) == 1
    stages = [json.loads(x)["stage"] for x in (run / "shared" / "cycle_01" / "timings.jsonl").read_text().split("\n")
              if x]
    assert sorted(stages) == ["evaluate", "sample", "train"]  # cycle 1 made once, though both needed it

    slots = tmp_path / "slots"
    cli("run", tiny_config, "--run-dir", slots, "--no-report", "--set", "runtime.workers=2", *_sets(SMALL))
    assert (slots / "metrics.jsonl").read_text() == plain
    assert _slots(slots) == {"cpu:0", "cpu:1"}  # both workers took jobs; where a job ran changes nothing


@pytest.mark.slow
def test_make_j_is_make_and_a_changed_config_is_refused(tmp_path, tiny_config, cli):
    """`make -j2` writes the rows of a plain `run`; a second make does nothing, a touched config
    nothing either, a changed one is refused in one line. (make without -j, one job at a time since
    tiny.yaml has one worker, is tests/loop/test_study.py's kill -9 test, which compares it too.)"""
    config = tmp_path / "study.yaml"
    config.write_text(f"base: {tiny_config}\nstudy: {{cycles: 2, paradigms: [replace, accumulate-subsample],\n"
                      "  arms: [{name: vanilla, selector: random}, {name: greedy, selector: greedy}]}\n")
    cli("run", config, "--run-dir", tmp_path / "plain", "--no-report")
    make = ["make", "-s", "-C", str(ROOT), "study", f"CONFIG={config}", "INSTALLED=", f"CD={' '.join(CLI)}"]
    for jobs in ("-j2",):
        run = tmp_path / jobs
        out = subprocess.run(make + [jobs, f"RUN={run}"], capture_output=True, text=True, timeout=900)
        assert out.returncode == 0, out.stderr[-2000:]
        assert (run / "metrics.jsonl").read_text() == (tmp_path / "plain" / "metrics.jsonl").read_text()
        assert (run / "report.md").exists()
    before = {t: t.read_text() for t in (tmp_path / "-j2").rglob("timings.jsonl")}
    t0 = time.time()
    again = subprocess.run(make + ["-j2", f"RUN={tmp_path / '-j2'}"], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and time.time() - t0 < 30, again.stderr[-1000:]
    assert {t: t.read_text() for t in (tmp_path / "-j2").rglob("timings.jsonl")} == before  # nothing redone
    os.utime(config)  # touched, not changed: nothing to redo either
    assert subprocess.run(make + ["-j2", f"RUN={tmp_path / '-j2'}"], capture_output=True, timeout=300).returncode == 0
    config.write_text(config.read_text() + "train: {steps: 7}\n")
    changed = subprocess.run(make + ["-j2", f"RUN={tmp_path / '-j2'}"], capture_output=True, text=True, timeout=300)
    assert changed.returncode != 0
    errors = [line for line in changed.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "train.steps" in errors[0] and "Traceback" not in changed.stderr, changed.stderr
