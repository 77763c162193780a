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
    assert (tmp_path / "t" / "model" / "model_index.json").exists() and (tmp_path / "t" / "config.yaml").exists()
    cli("sample", tmp_path / "t" / "model", tmp_path / "g.npz", "--count", 24, *FAST)
    with np.load(tmp_path / "g.npz") as z:
        assert z["images"].shape == (24, 1, 8, 8) and z["images"].dtype == np.uint8
    p = cli("evaluate", tmp_path / "g.npz", "--train", tmp_path / "d.npz", "--out", tmp_path / "ev", *FAST)
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert m["vs_train"]["n_generated"] == 24 and m["fd"]["label"] == "FD (classifier-digits)"
    assert "generated vs training set: memorization rate (1/3 rule)" in p.stdout
    assert (tmp_path / "ev" / "nn.png").exists()
    e = json.loads(cli("entropy", tmp_path / "g.npz", "--k", 2).stdout)
    assert e["n"] == 24 and e["d"] == 64 and e["k"] == 2 and e["space"] == "pixel 0-255"
    # the same model folder with another config is refused, and nothing written before changes
    before = (tmp_path / "t" / "model" / "unet" / "diffusion_pytorch_model.safetensors").read_bytes()
    assert_user_error(cli("train", tmp_path / "t", *FAST, "--set", "seed=9", ok=False), "different config")
    assert (tmp_path / "t" / "model" / "unet" / "diffusion_pytorch_model.safetensors").read_bytes() == before


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
    for cmd in ("data", "train", "sample", "evaluate", "entropy", "select", "cycle", "run", "report", "init", "phase"):
        out = cli(cmd, "--help").stdout
        assert "Examples:" in out and "collapse-diffusion" in out
    assert cli("--version").stdout.startswith("collapse-diffusion ")


@pytest.mark.slow
def test_console_script_and_module_entry_points():
    """The real processes a user starts: the console script and python -m."""
    exe = [str(__import__("pathlib").Path(sys.executable).parent / "collapse-diffusion")]
    p = subprocess.run([*exe, "--help"], capture_output=True, text=True)
    assert p.returncode == 0 and "collapse-diffusion" in p.stdout
    p = subprocess.run([sys.executable, "-m", "collapse_diffusion", "data", "--set", "data.n=99999"],
                       capture_output=True, text=True)
    assert p.returncode == 2 and p.stderr.strip().startswith("error:") and "Traceback" not in p.stderr


def test_bad_inputs_end_in_one_error_line_and_leave_nothing_behind(cli, tmp_path, tiny_config):
    d = tmp_path
    bad = lambda *a: cli(*a, ok=False)  # noqa: E731
    assert_user_error(bad("train", d / "t", "--set", "train.lr=-1"), "train.lr")
    assert not (d / "t").exists()
    assert_user_error(bad("run", tiny_config, "--run-dir", d / "r", "--set", "study.oversample=.nan",
                          "--set", "study.arms=[{name: v, selector: random}]"), "oversample")
    assert not (d / "r").exists()
    np.savez(d / "empty.npz", images=np.zeros((0, 1, 8, 8), np.uint8))
    assert_user_error(bad("train", d / "t0", "--data", d / "empty.npz"), "no images")
    np.savez(d / "one.npz", images=np.zeros((1, 1, 8, 8), np.uint8))
    np.savez(d / "two.npz", images=np.full((2, 1, 8, 8), 9, np.uint8))
    assert_user_error(bad("evaluate", d / "one.npz", "--train", d / "two.npz", "--out", d / "ev"), "at least 2")
    (d / "pics").mkdir()
    from PIL import Image
    for i in range(3):
        Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(d / "pics" / f"{i}.png")
    (d / "pics" / "2.png").write_bytes((d / "pics" / "2.png").read_bytes()[:40])  # truncated
    assert_user_error(bad("data", "--set", "data.source=folder", "--set", f"data.root={d / 'pics'}",
                          "--set", "data.n=2"), "2.png")
    (d / "afile").write_text("x")
    assert_user_error(bad("data", "--set", "data.n=24", "--out", d / "afile" / "x.npz"), "afile")
    (d / "adir").mkdir()
    assert_user_error(bad("data", "--set", "data.n=24", "--out", d / "adir"), "adir")
    assert list((d / "adir").iterdir()) == [] and not list(d.glob(".*tmp*"))
    (d / "empty.yaml").write_text("")
    assert_user_error(bad("data", "--config", d / "empty.yaml"), "empty")
    assert_user_error(bad("data", "--set", "train.stepz=3"), "--set 'train.stepz=3'", "train.stepz")
    assert_user_error(bad("data", "--set", "train.steps=many"), "--set 'train.steps=many'")


def test_arm_override_config_diff_and_stale_temporaries(cli, tmp_path, tiny_config):
    from collapse_diffusion.loop.experiment import load_config
    cfg = load_config(tiny_config, ["study.arms.tdf.tau0=500", "study.arms.greedy.space=feature"])
    arms = {a.name: a for a in cfg.study.arms}
    assert arms["tdf"].tau0 == 500.0 and arms["greedy"].space == "feature" and arms["vanilla"].tau0 == 2000.0
    assert_user_error(cli("data", "-c", tiny_config, "--set", "study.arms.nope.tau0=5", ok=False),
                      "no item named 'nope'")
    run = tmp_path / "r"
    cli("init", tiny_config, "--run-dir", run)
    (run / ".samples.npz.abc.tmp.npz").write_text("half")
    (run / "shared" / ".model.xyz.tmp").mkdir()
    assert_user_error(cli("run", tiny_config, "--run-dir", run, "--set", "seed=1", "--set", "train.steps=7",
                          ok=False), "differs in seed, train.steps")
    cli("init", tiny_config, "--run-dir", run)  # reopening cleans what a killed run left
    assert not list(run.rglob(".*tmp*"))


def test_files_honour_the_umask(tmp_path):
    import os

    from collapse_diffusion.core.io import atomic_dir, atomic_write_text
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        with atomic_dir(tmp_path / "d") as t:
            (t / "f").write_text("y")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o755


def test_select_a_pool_with_an_arm_of_the_config(cli, tmp_path, tiny_config):
    """The pool form of `select`: N unique images of the pool, the same ones for the same seed,
    greedy's set more spread out than random's, and the selection record beside it."""
    from collapse_diffusion.data.images import load_npz
    from collapse_diffusion.measure.entropy import kl_entropy
    cli("data", "-c", tiny_config, "--set", "data.n=200", "--out", tmp_path / "pool.npz")
    for arm, seed in (("greedy", 0), ("greedy", 0), ("greedy", 1), ("vanilla", 0)):
        cli("select", tmp_path / "pool.npz", tmp_path / f"{arm}{seed}.npz", "--arm", arm, "-c", tiny_config,
            "--n", 20, "--seed", seed)
    pick = {k: load_npz(tmp_path / f"{k}.npz") for k in ("greedy0", "greedy1", "vanilla0")}
    prov = {k: {tuple(p) for p in v.provenance.tolist()} for k, v in pick.items()}
    assert all(len(v) == 20 for v in prov.values()) and prov["greedy0"] != prov["greedy1"]
    assert load_npz(tmp_path / "greedy0.npz").provenance.tolist() == pick["greedy0"].provenance.tolist()
    assert kl_entropy(pick["greedy0"].flat()).nats > kl_entropy(pick["vanilla0"].flat()).nats
    record = json.loads((tmp_path / "greedy0.selection.json").read_text())
    assert (record["pool"], record["size"]) == (200, 20)


def test_select_refusals_are_one_line(cli, tmp_path, tiny_config):
    cli("data", "-c", tiny_config, "--out", tmp_path / "pool.npz")
    assert_user_error(cli("select", tmp_path / "pool.npz", tmp_path / "o.npz", "--arm", "nope", "-c", tiny_config,
                          ok=False), "not an arm of the config", "vanilla")
    assert_user_error(cli("select", tmp_path / "pool.npz", tmp_path / "o.npz", "--arm", "greedy", "-c", tiny_config,
                          "--n", 999, ok=False), "cannot select 999")
    mem = ["--set", "study.arms=[{name: vanilla}, {name: mf, selector: memfilter}]"]
    assert_user_error(cli("select", tmp_path / "pool.npz", tmp_path / "o.npz", "--arm", "mf", "-c", tiny_config,
                          *mem, ok=False), "select inside a run directory")
    assert not (tmp_path / "o.npz").exists()
