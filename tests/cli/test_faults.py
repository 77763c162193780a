"""Bad input and faults as a new user and a fault injector meet them: one `error:` line and exit 2
for every mistake, nothing written into a folder that is not a run, one process per run directory,
and Ctrl-C answered with one line at any moment."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import ROOT, assert_user_error

CLI = [sys.executable, "-m", "collapse_diffusion"]


def test_mistakes_typed_on_the_command_line_end_in_one_line(cli, tmp_path, tiny_config):
    d, bad = tmp_path, lambda *a: cli(*a, ok=False)  # noqa: E731
    c = ["-c", tiny_config]
    assert_user_error(bad("data", *c, "--set", "data.fit=resize", "--set", "data.resolution=0"), "data.resolution")
    assert_user_error(bad("init", tiny_config, "--run-dir", d / "big", "--set", "data.fit=resize",
                          "--set", "data.resolution=10000"), "between 4 and 512")
    assert not (d / "big").exists()
    assert_user_error(bad("data", *c, "--set", "data.resolution=16"), "data.fit is none")
    assert_user_error(bad("data", *c, "--n", "0", "--out", d / "n0.npz"), "--n 0")
    assert_user_error(bad("data", *c, "--n", "-5"), "--n -5")
    assert_user_error(bad("init", tiny_config, "--run-dir", d / "s", "--set", "seed=-1"), "non-negative")
    assert_user_error(bad("run", tiny_config, "--run-dir", d / "o", "--set", "study.oversample=1.0e+9"), "(0, 64]")
    assert_user_error(bad("phase", tiny_config, "--run-dir", d / "ph", "--sizes", ""), "--sizes")
    assert_user_error(bad("phase", tiny_config, "--run-dir", d / "ph", "--sizes", "16,16"), "each once")
    assert_user_error(bad("train", d / "t", *c, "--set", "runtime.device=bogus"), "devices here: auto, cpu")
    if not __import__("torch").cuda.is_available():
        assert_user_error(bad("train", d / "t", *c, "--set", "runtime.device=cuda"), "does not exist on this machine")
    (d / "bin.yaml").write_bytes(bytes(range(256)) * 4)
    assert_user_error(bad("data", "-c", d / "bin.yaml"), "not a text file")
    (d / "dup.yaml").write_text("train:\n  steps: 3\n  steps: 4\n")
    assert_user_error(bad("data", "-c", d / "dup.yaml"), "given twice")
    assert not any(p.name not in ("bin.yaml", "dup.yaml") for p in d.iterdir())


def test_bad_image_sets_and_counts_end_in_one_line(cli, tmp_path, tiny_config):
    d, bad = tmp_path, lambda *a: cli(*a, ok=False)  # noqa: E731
    np.savez(d / "nan.npz", images=np.zeros((8, 1, 8, 8), np.uint8), labels=np.full(8, np.nan))
    assert_user_error(bad("entropy", d / "nan.npz"), "'labels' must be 8 integers")
    np.savez(d / "gen.npz", images=np.random.default_rng(0).integers(0, 255, (30, 1, 8, 8), dtype=np.uint8))
    np.savez(d / "one.npz", images=np.zeros((1, 1, 8, 8), np.uint8))
    assert_user_error(bad("evaluate", d / "gen.npz", "--train", d / "gen.npz", "--real", d / "one.npz",
                          "--out", d / "ev", "-c", tiny_config), "at least 2 real images")
    np.savez(d / "last.npz", images=np.zeros((48, 8, 8, 3), np.uint8))  # channels last, as numpy and PIL keep it
    from collapse_diffusion.data.images import load_npz
    assert load_npz(d / "last.npz").shape == (3, 8, 8)
    model = d / "m" / "model"
    (model / "unet").mkdir(parents=True)
    (model / "model_index.json").write_text("{}")
    (model / "unet" / "config.json").write_text(json.dumps({"in_channels": 1, "sample_size": 8}))
    assert_user_error(bad("sample", model, d / "x.npz", "--count", "1000000000000"), "ask for at most")
    assert_user_error(bad("sample", model, d / "x.npz", "--seed", "-1"), "non-negative")
    assert not (d / "x.npz").exists()


def test_report_recognises_a_run_before_writing_anything(cli, tmp_path):
    d, bad = tmp_path, lambda *a: cli(*a, ok=False)  # noqa: E731
    (d / "plain").mkdir()
    assert_user_error(bad("report", d / "plain"), "not a finished run")
    (d / "junk").mkdir()
    (d / "junk" / "config.yaml").write_text("seed: 0\n")
    (d / "junk" / "metrics.jsonl").write_text("this is not json\n")
    assert_user_error(bad("report", d / "junk"), "line 1 is not a metrics row")
    (d / "rows").mkdir()
    (d / "rows" / "config.yaml").write_text("seed: 0\n")
    (d / "rows" / "metrics.jsonl").write_text('{"a": 1}\n')
    assert_user_error(bad("report", d / "rows"), "not a metrics row")
    (d / "ph").mkdir()
    (d / "ph" / "phase.jsonl").write_text("{}\n")
    assert_user_error(bad("report", d / "ph"), "is a phase diagram")
    for folder in ("plain", "junk", "rows", "ph"):
        assert not (d / folder / "plots").exists() and not (d / folder / "report.md").exists()


def _wait_for(predicate, seconds: float, what: str) -> None:
    deadline = time.time() + seconds
    while not predicate():
        assert time.time() < deadline, what
        time.sleep(0.05)


@pytest.mark.slow
def test_two_processes_on_one_directory_one_refused_one_waiting(tmp_path, tiny_config, cli):
    """While another process holds a run directory, `run` is refused with the holder's PID and
    leaves the directory as it was; with --wait it starts once the holder lets go and runs the study
    once: every stage timed once."""
    from collapse_diffusion.core.lock import exclusive
    run = tmp_path / "r"
    args = ["run", str(tiny_config), "--run-dir", str(run), "--no-report"]
    with exclusive(run):  # lockf, and core/lock.py's per-process registry: refused in this process too
        assert_user_error(cli(*args, ok=False), f"in use by process {os.getpid()}", "--wait")
        assert [p.name for p in run.iterdir()] == [".lock"]
        waiting = subprocess.Popen(CLI + args + ["--wait"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   text=True)
        time.sleep(2.0)
        assert waiting.poll() is None and not (run / "config.yaml").exists()  # still waiting
    assert waiting.wait(timeout=600) == 0, waiting.stderr.read()[-2000:]
    assert (run / "metrics.jsonl").exists()
    for timings in run.rglob("timings.jsonl"):
        stages = [json.loads(line)["stage"] for line in timings.read_text().splitlines()]
        assert len(stages) == len(set(stages)), timings


@pytest.mark.slow
def test_ctrl_c_is_one_line_at_start_up_and_with_workers(tmp_path, tiny_config):
    """SIGINT in the first second (while torch loads) and, to the whole process group, once two
    workers run: exit 130, one line from the study process, no traceback (that the rerun resumes is
    the kill -9 test's)."""
    run = tmp_path / "r"
    args = CLI + ["run", str(tiny_config), "--run-dir", str(run), "--no-report", "--set", "runtime.workers=2"]
    early = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
    time.sleep(1.0)
    os.kill(early.pid, signal.SIGINT)
    assert early.wait(timeout=60) == 130
    err = early.stderr.read()
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("interrupted:"), err
    late = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        workers = lambda: subprocess.run(["pgrep", "-P", str(late.pid), "-f", "spawn_main"],  # noqa: E731
                                         capture_output=True).stdout.split()
        _wait_for(lambda: len(workers()) >= 1, 240, "the study never started its workers")
        time.sleep(3.0)  # the workers are importing torch, or training
        os.killpg(late.pid, signal.SIGINT)
        assert late.wait(timeout=60) == 130
        err = late.stderr.read()
        assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
        assert [line for line in err.splitlines() if line.startswith("interrupted:")] != []
        _wait_for(lambda: not subprocess.run(["pgrep", "-s", str(late.pid)], capture_output=True).stdout, 60,
                  "a worker outlived the interrupted study")
    finally:
        subprocess.run(["pkill", "-9", "-s", str(late.pid)], capture_output=True)


def test_the_lock_leaves_no_folder_for_a_refused_run(tmp_path):
    from collapse_diffusion.core.errors import UserError
    from collapse_diffusion.core.lock import exclusive
    with pytest.raises(UserError):
        with exclusive(tmp_path / "new"):
            raise UserError("refused")
    assert not (tmp_path / "new").exists()
    with exclusive(tmp_path / "held"):
        probe = subprocess.run([sys.executable, "-c", "from collapse_diffusion.core.lock import exclusive\n"
                                f"with exclusive({str(tmp_path / 'held')!r}): pass"], capture_output=True, text=True,
                               cwd=ROOT)
        assert probe.returncode != 0 and f"in use by process {os.getpid()}" in probe.stderr


@pytest.mark.slow
def test_damaged_artefacts_are_named_and_rebuilt(cli, tmp_path, tiny_config):
    """A finished file damaged after the fact (truncated samples, flipped model weights, a garbled
    metrics.json, a truncated cycle-1 nn.npz) is named on the next run, which stops with one line;
    the run after it rebuilds the file, and metrics.jsonl comes out byte for byte as before."""
    run = tmp_path / "r"
    args = ("run", tiny_config, "--run-dir", run, "--no-report")
    cli(*args)
    before = (run / "metrics.jsonl").read_bytes()

    def truncate(p):
        p.write_bytes(p.read_bytes()[:100])

    def flip(p):
        b = bytearray(p.read_bytes())
        b[len(b) // 2] ^= 0xFF
        p.write_bytes(bytes(b))

    damages = [(run / "replace" / "greedy" / "cycle_02" / "samples.npz", truncate),
               (run / "shared" / "cycle_01" / "model" / "unet" / "diffusion_pytorch_model.safetensors", flip),
               (run / "accumulate-subsample" / "tdf" / "cycle_03" / "metrics.json", lambda p: p.write_text("{")),
               (run / "shared" / "cycle_01" / "nn.npz", truncate)]
    for path, damage in damages:
        damage(path)
        assert_user_error(cli(*args, ok=False), str(path), "run the same command again")
        cli(*args)
        assert (run / "metrics.jsonl").read_bytes() == before, path


def test_a_damaged_checkpoint_is_named_and_training_restarts(tmp_path):
    from collapse_diffusion.core.config import DataConfig, DiffusionConfig, RuntimeConfig, TrainConfig
    from collapse_diffusion.core.errors import UserError
    from collapse_diffusion.data.sources import load_real
    from collapse_diffusion.diffusion.train import train
    x = load_real(DataConfig(n=16), 0).images
    cfg, cpu = TrainConfig(steps=6, batch_size=8, warmup_steps=1, checkpoint_every=2), RuntimeConfig("cpu")

    class Stop(Exception):
        pass

    def stop(step):
        if step == 3:
            raise Stop

    with pytest.raises(Stop):
        train(x, cfg, DiffusionConfig(), "digits-tiny", tmp_path, 0, on_step=stop, runtime=cpu)
    state = tmp_path / "checkpoint" / "state.pt"
    state.write_bytes(state.read_bytes()[:50])
    with pytest.raises(UserError, match="state.pt' has 50 bytes.*is damaged"):
        train(x, cfg, DiffusionConfig(), "digits-tiny", tmp_path, 0, runtime=cpu)
    assert (train(x, cfg, DiffusionConfig(), "digits-tiny", tmp_path, 0, runtime=cpu) / "model_index.json").exists()


def test_a_full_disk_is_one_line_and_leaves_no_partial_model(cli, tmp_path, tiny_config):
    """`train` into a folder on a 600 kB tmpfs: one line saying the disk is full and where; no model
    folder and no temporary left behind."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        r = cli("train", disk / "t", "-c", tiny_config, ok=False)
        assert_user_error(r, "the disk is full", str(disk / "t"))
        assert not (disk / "t" / "model").exists()
        assert not [p for p in (disk / "t").rglob("*") if ".tmp" in p.name]
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)
