"""The user's path: the CLI on tiny inputs, through a real subprocess (exit codes, no tracebacks)."""
import json
import subprocess
import sys

import numpy as np
import pytest

CLI = [sys.executable, "-m", "collapse_diffusion"]
FAST = ["--set", "data.n=24", "--set", "train.steps=4", "--set", "train.batch_size=8",
        "--set", "train.warmup_steps=1", "--set", "sample.steps=2", "--set", "eval.classifier_steps=10",
        "--set", "eval.bootstrap=20"]


def cli(*args, cwd=None, ok=True):
    p = subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, cwd=cwd)
    if ok:
        assert p.returncode == 0, p.stderr[-2000:]
    return p


def user_error(p, *words):
    assert p.returncode == 2, (p.returncode, p.stderr[-1500:])
    assert "Traceback" not in p.stderr
    lines = [l for l in p.stderr.strip().splitlines() if l.startswith("error:")]
    assert len(lines) == 1, p.stderr
    for w in words:
        assert w in lines[0], lines[0]


@pytest.mark.slow
def test_data_train_sample_evaluate_entropy(tmp_path):
    cli("data", *FAST, "--out", tmp_path / "d.npz")
    assert (tmp_path / "d.png").exists() and (tmp_path / "d.config.yaml").exists()
    cli("train", tmp_path / "t", *FAST)
    assert (tmp_path / "t" / "model" / "config.json").exists() and (tmp_path / "t" / "config.yaml").exists()
    cli("sample", tmp_path / "t" / "model", tmp_path / "g.npz", "--n", 24, *FAST)
    with np.load(tmp_path / "g.npz") as z:
        assert z["images"].shape == (24, 1, 8, 8) and z["images"].dtype == np.uint8
    p = cli("evaluate", tmp_path / "g.npz", "--train", tmp_path / "d.npz", "--out", tmp_path / "ev", *FAST)
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert m["vs_train"]["n_generated"] == 24 and m["fd"]["label"] == "FD (classifier-digits)"
    assert "memorization rate vs train" in p.stdout and (tmp_path / "ev" / "nn.png").exists()
    e = json.loads(cli("entropy", tmp_path / "g.npz", "--k", 2).stdout)
    assert e["n"] == 24 and e["d"] == 64 and e["k"] == 2 and e["space"] == "pixel 0-255"


@pytest.mark.slow
def test_user_errors_are_one_line_exit_2(tmp_path):
    user_error(cli("data", "--set", "data.n=99999", ok=False), "1797")
    user_error(cli("data", "--config", tmp_path / "missing.yaml", ok=False), "does not exist")
    (tmp_path / "bad.yaml").write_text("train: {stepz: 3}\n")
    user_error(cli("train", tmp_path / "o", "--config", tmp_path / "bad.yaml", ok=False), "train.stepz", "bad.yaml")
    user_error(cli("sample", tmp_path / "nomodel", tmp_path / "x.npz", ok=False), "not a model folder")
    (tmp_path / "junk.npz").write_text("junk")
    user_error(cli("entropy", tmp_path / "junk.npz", ok=False), "not an image set")
    user_error(cli("data", "--set", "data.source=mnist", "--set", f"data.root={tmp_path}", ok=False),
               "MNIST", "data.download=true")
    np.savez(tmp_path / "rgb.npz", images=np.zeros((30, 3, 8, 8), np.uint8))
    np.savez(tmp_path / "gray.npz", images=np.zeros((30, 1, 8, 8), np.uint8))
    user_error(cli("evaluate", tmp_path / "rgb.npz", "--train", tmp_path / "gray.npz", ok=False), "differ in shape")


@pytest.mark.slow
def test_train_refuses_other_config_and_keeps_files(tmp_path):
    cli("train", tmp_path / "t", *FAST)
    before = (tmp_path / "t" / "model" / "diffusion_pytorch_model.safetensors").read_bytes()
    user_error(cli("train", tmp_path / "t", *FAST, "--set", "seed=9", ok=False), "different config")
    assert (tmp_path / "t" / "model" / "diffusion_pytorch_model.safetensors").read_bytes() == before


def test_help_has_examples():
    for cmd in ("data", "train", "sample", "evaluate", "entropy", "cycle", "run", "report", "init"):
        out = cli(cmd, "--help").stdout
        assert "Examples:" in out and "collapse-diffusion" in out
