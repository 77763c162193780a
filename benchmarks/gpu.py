"""GPU benchmark of the fast paths, each against its baseline in the same run.

    python benchmarks/gpu.py [--quick] [--out benchmarks/gpu.json]

1. Training images/s, UNet48, batch 128, 32x32x3: the fast path (bf16 autocast, channels_last,
   fused AdamW, TF32, torch.compile) against eager fp32 on the same model. Goal: >= 2x (aim 20k img/s).
2. Sampling images/s of DDPM-1000 and DDIM-50 (compiled, bf16 step) against eager fp32. Goal: DDPM-1000
   >= 100 img/s.
3. kNN top-2 at 50k x 50k x 3072: Triton kernel against the chunked torch engine (and faiss if
   installed). Goal: <= 1 s.
4. Greedy selection of 32k from 65k at d = 3072: Triton min-update against torch. Goal: <= 10 s.
Prints absolute figures, ratios and the GPU's name; writes them as JSON with --out.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from collapse_diffusion.core.config import DiffusionConfig, RuntimeConfig, SampleConfig, TrainConfig
from collapse_diffusion.diffusion.sample import generate
from collapse_diffusion.diffusion.train import train
from collapse_diffusion.measure.knn import knn
from collapse_diffusion.selection.selectors import select_greedy


def sync() -> None:
    torch.cuda.synchronize()


def train_rate(fast: bool, steps: int, warmup: int, tmp: Path) -> float:
    images = np.random.default_rng(0).integers(0, 256, (4096, 3, 32, 32), dtype=np.uint8)
    cfg = TrainConfig(steps=warmup + steps, batch_size=128, warmup_steps=10, checkpoint_every=10 ** 9)
    out = tmp / f"train_fast{fast}"
    train(images, cfg, DiffusionConfig(), "unet48", out, seed=0, runtime=RuntimeConfig("cuda", fast, fast))
    rows = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    first = next(r for r in rows if r["step"] >= warmup)
    last = rows[-1]
    if first is last:
        return last["images_per_s"], out / "model"
    elapsed = last["step"] * 128 / last["images_per_s"] - first["step"] * 128 / first["images_per_s"]
    return (last["step"] - first["step"]) * 128 / elapsed, out / "model"


def sample_rate(model: Path, sampler: str, steps: int, n: int, fast: bool) -> float:
    cfg = SampleConfig(sampler=sampler, steps=steps, batch_size=n)
    generate(model, min(n, 256), 0, SampleConfig(sampler=sampler, steps=2, batch_size=min(n, 256)),
             DiffusionConfig(), RuntimeConfig("cuda", fast, fast))  # compile / warm up
    sync()
    t0 = time.perf_counter()
    generate(model, n, 1, cfg, DiffusionConfig(), RuntimeConfig("cuda", fast, fast))
    sync()
    return n / (time.perf_counter() - t0)


def timed(fn) -> float:
    fn()
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller sizes for a smoke run")
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    assert torch.cuda.is_available(), "benchmarks/gpu.py needs a CUDA GPU"
    res: dict = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "date": time.strftime("%Y-%m-%d")}
    print(f"GPU: {res['gpu']}  torch {res['torch']}")
    steps = 50 if a.quick else 300
    with tempfile.TemporaryDirectory() as tmp:
        eager, _ = train_rate(False, steps, 20, Path(tmp))
        fast, model = train_rate(True, steps, 60, Path(tmp))
        res["train"] = {"eager_fp32_img_s": eager, "fast_img_s": fast, "ratio": fast / eager}
        print(f"train UNet48 b128 32x32: eager fp32 {eager:.0f} img/s | fast {fast:.0f} img/s | {fast / eager:.2f}x")
        n = 256 if a.quick else 2048
        for sampler, k in (("ddpm", 1000), ("ddim", 50)):
            e = sample_rate(model, sampler, k, n, fast=False)
            f = sample_rate(model, sampler, k, n, fast=True)
            res[f"sample_{sampler}{k}"] = {"eager_img_s": e, "fast_img_s": f, "ratio": f / e, "n": n}
            print(f"sample {sampler}-{k} ({n} images): eager {e:.1f} img/s | fast {f:.1f} img/s | {f / e:.2f}x")
    m = 10000 if a.quick else 50000
    x = torch.rand(m, 3072, device="cuda") * 255
    t_triton = timed(lambda: knn(x, x, k=2, backend="triton"))
    t_torch = timed(lambda: knn(x, x, k=2, backend="torch"))
    res["knn"] = {"size": f"{m}x{m}x3072", "triton_s": t_triton, "torch_s": t_torch, "ratio": t_torch / t_triton}
    line = f"kNN top-2 {m}x{m}x3072: triton {t_triton:.3f}s | torch {t_torch:.3f}s | {t_torch / t_triton:.2f}x"
    try:
        import faiss
        xc = x.cpu().numpy()
        t0 = time.perf_counter()
        index = faiss.IndexFlatL2(3072)
        index.add(xc)
        index.search(xc, 2)
        res["knn"]["faiss_cpu_s"] = time.perf_counter() - t0
        line += f" | faiss-cpu {res['knn']['faiss_cpu_s']:.2f}s"
    except ImportError:
        pass
    print(line)
    pool, pick = (8192, 4096) if a.quick else (65536, 32768)
    y = torch.rand(pool, 3072, device="cuda") * 255
    t_sel = timed(lambda: select_greedy(y, pick, np.random.default_rng(0)))
    res["greedy"] = {"pool": pool, "select": pick, "d": 3072, "seconds": t_sel}
    print(f"greedy selection {pick} of {pool} at d=3072: {t_sel:.2f}s")
    if a.out:
        a.out.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
