"""The kNN engine (k = 2) against scikit-learn brute force and faiss-cpu IndexFlatL2, same run.

    python benchmarks/knn.py [--sizes 10000x10000x784 2000x2000x64] [--device cpu]

Data: uniform 0-255 pixels (float32). Times are the best of 3 runs; ratios > 1 mean the engine is
faster. faiss is optional (pip install faiss-cpu); without it that column is skipped.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from sklearn.neighbors import NearestNeighbors

from collapse_diffusion.measure.knn import knn


def best_of(fn, reps: int = 3) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", nargs="+", default=["10000x10000x784", "2000x2000x64"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    try:
        import faiss
    except ImportError:
        faiss = None
    print(f"torch threads {torch.get_num_threads()}; device {a.device}; faiss {'yes' if faiss else 'not installed'}")
    for spec in a.sizes:
        m, n, d = map(int, spec.split("x"))
        rng = np.random.default_rng(0)
        q = (rng.random((m, d)) * 255).astype(np.float32)
        x = (rng.random((n, d)) * 255).astype(np.float32)
        ours = best_of(lambda: knn(q, x, k=2, device=a.device), a.reps)
        sk = best_of(lambda: NearestNeighbors(n_neighbors=2, algorithm="brute").fit(x).kneighbors(q), a.reps)
        line = f"{m}x{n}x{d}: engine {ours:.3f}s | sklearn brute {sk:.3f}s ({sk / ours:.2f}x)"
        if faiss is not None:
            def run_faiss():
                index = faiss.IndexFlatL2(d)
                index.add(x)
                index.search(q, 2)
            fa = best_of(run_faiss, a.reps)
            line += f" | faiss IndexFlatL2 {fa:.3f}s ({fa / ours:.2f}x)"
        print(line)


if __name__ == "__main__":
    main()
