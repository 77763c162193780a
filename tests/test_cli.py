"""The user's path: every CLI command on tiny inputs, exit codes, one-line errors, no tracebacks."""
import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import assert_user_error

FAST = ["--set", "data.n=24", "--set", "train.steps=4", "--set", "train.batch_size=8",
        "--set", "train.warmup_steps=1", "--set", "sample.steps=2", "--set", "eval.classifier_steps=10",
        "--set", "eval.bootstrap=20"]


@pytest.mark.slow
def test_data_train_sample_evaluate_entropy(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cli("data", *FAST, "--out", tmp_path / "d.npz")
    assert (tmp_path / "d.png").exists() and (tmp_path / "d.config.yaml").exists()
    cli("train", tmp_path / "t", *FAST)
    assert (tmp_path / "t" / "model" / "config.json").exists() and (tmp_path / "t" / "config.yaml").exists()
    cli("sample", tmp_path / "t" / "model", tmp_path / "g.npz", "--count", 24, *FAST)
    with np.load(tmp_path / "g.npz") as z:
        assert z["images"].shape == (24, 1, 8, 8) and z["images"].dtype == np.uint8
    p = cli("evaluate", tmp_path / "g.npz", "--train", tmp_path / "d.npz", "--out", tmp_path / "ev", *FAST)
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert m["vs_train"]["n_generated"] == 24 and m["fd"]["label"] == "FD (classifier-digits)"
    assert "memorization rate vs train" in p.stdout and (tmp_path / "ev" / "nn.png").exists()
    e = json.loads(cli("entropy", tmp_path / "g.npz", "--k", 2).stdout)
    assert e["n"] == 24 and e["d"] == 64 and e["k"] == 2 and e["space"] == "pixel 0-255"
    # the same model folder with another config is refused, and nothing written before changes
    before = (tmp_path / "t" / "model" / "diffusion_pytorch_model.safetensors").read_bytes()
    assert_user_error(cli("train", tmp_path / "t", *FAST, "--set", "seed=9", ok=False), "different config")
    assert (tmp_path / "t" / "model" / "diffusion_pytorch_model.safetensors").read_bytes() == before


def test_user_errors_are_one_line_exit_2(cli, tmp_path):
    assert_user_error(cli("data", "--set", "data.n=99999", ok=False), "1797")
    assert_user_error(cli("data", "--config", tmp_path / "missing.yaml", ok=False), "does not exist")
    (tmp_path / "bad.yaml").write_text("train: {stepz: 3}\n")
    assert_user_error(cli("train", tmp_path / "o", "--config", tmp_path / "bad.yaml", ok=False),
                      "train.stepz", "bad.yaml")
    assert_user_error(cli("sample", tmp_path / "nomodel", tmp_path / "x.npz", ok=False), "not a model folder")
    (tmp_path / "junk.npz").write_text("junk")
    assert_user_error(cli("entropy", tmp_path / "junk.npz", ok=False), "not an image set")
    assert_user_error(cli("data", "--set", "data.source=mnist", "--set", f"data.root={tmp_path}", ok=False),
                      "MNIST", "data.download=true")
    np.savez(tmp_path / "rgb.npz", images=np.zeros((30, 3, 8, 8), np.uint8))
    np.savez(tmp_path / "gray.npz", images=np.zeros((30, 1, 8, 8), np.uint8))
    assert_user_error(cli("evaluate", tmp_path / "rgb.npz", "--train", tmp_path / "gray.npz", ok=False),
                      "differ in shape")
    assert cli("data", "--bogus-flag", ok=False).returncode == 2


def test_help_has_examples(cli):
    for cmd in ("data", "train", "sample", "evaluate", "entropy", "cycle", "run", "report", "init", "phase"):
        out = cli(cmd, "--help").stdout
        assert "Examples:" in out and "collapse-diffusion" in out


@pytest.mark.slow
def test_console_script_and_module_entry_points():
    """The real processes a user starts: the console script and python -m."""
    exe = [str(__import__("pathlib").Path(sys.executable).parent / "collapse-diffusion")]
    p = subprocess.run([*exe, "--help"], capture_output=True, text=True)
    assert p.returncode == 0 and "collapse-diffusion" in p.stdout
    p = subprocess.run([sys.executable, "-m", "collapse_diffusion", "data", "--set", "data.n=99999"],
                       capture_output=True, text=True)
    assert p.returncode == 2 and p.stderr.strip().startswith("error:") and "Traceback" not in p.stderr
