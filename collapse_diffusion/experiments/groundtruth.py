"""Ground truth for copy measures (docs/method.md §7): synthetic self-consuming loops whose every
sample carries a known copy label, run through the tool's own evaluation and lineage code.

A synthetic "model" of cycle n draws each of its m samples from its training set D_n:

- with probability p_n (the scenario's copy share at cycle n) it **copies**: a uniformly drawn
  training image z plus Gaussian noise of standard deviation ``precision`` grey levels per pixel
  (fixed pixel precision), or of ``precision`` times the ratio of D_n's median 1-NN spacing to
  D_1's (``follows_spacing``: a copier as loose as the set is spread); ``favourites = k`` copies only
  the first k images of D_n, which fills D_{n+1} with twins (copies of copies); ``blend = (a, b)``
  gives a copy a trained model's kind of error instead of pure noise: it moves toward one of z's
  three nearest distinct training images by e ~ U(a, b) (well below an interpolant's 0.25), noise on
  top (measured on the default study's cycle-1 model: 67-80% of its copies' offset from the source
  lies along the differences to the source's neighbours, where noise would put 25%);
- ``fresh``: it draws held-out real images (a generalizer that neither copies nor contracts);
- ``structured = s``: a copy moves toward one of z's three nearest distinct training images by s px-L2,
  noise on top: an error of fixed size, the error of a model with a fixed training budget, which
  does not shrink as D_n contracts (``tighten``: a fresh generalizer whose clusters tighten);
- otherwise it **interpolates**: (1 - l) z + l z' with z' one of z's three nearest distinct training
  images and l ~ U(0.25, 0.75) (``INTERPOLANT``), or l ~ U(0.05, 0.95) (``WIDE``) in the scenarios that
  say so. Interpolation is not copying, and it contracts the set; an interpolant close to either end
  (l < 1/4 or l > 3/4) is where a relative rule calls a copy, and the wide scenarios count it.

"Distinct" means differing by more than 1 grey level rms, and a sample that rounds to a pixel-
identical training image is labelled a copy whatever drew it: at 8 bits it is one.

Samples are rounded to uint8. D_{n+1} is N of the first r*N samples drawn at random (replace, the
vanilla arm). Each cycle is evaluated by ``evaluate.evaluate_sets`` against D_n (with the lineage
roots the evaluation itself propagates, as a study does) and against R = D_1, and every copy share
the tool reports is set beside the truth: the share of G_n's samples that are copies. The copy
rule's calibration (measure.calibration) plants copies made the scenario's own way, as a study
plants its model's own near copies. The scores
and the table are ``experiments.copy_suite``'s; `collapse-diffusion groundtruth` runs the suite.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..core.config import EvalConfig
from ..data.images import ImageSet, make_set
from ..measure.calibration import NEAR_ABAR, PLANTED
from ..measure.memorization import DISTINCT

INTERPOLANT = (0.25, 0.75)  # an interpolant's share l ~ U(a, b) of the way to a neighbour: not a copy
WIDE = (0.05, 0.95)         # interpolants close to either end too: where a relative rule errs

# metrics.jsonl-style names of the copy shares the evaluation reports, and where they sit in CycleMetrics
MEASURES = {
    "copy_share": ("vs_train", "copy_share"),
    "memorization_rate": ("vs_train", "memorization_rate"),
    "memorization_rate_lineage": ("vs_train", "memorization_rate_lineage"),
    "relative_copy_share": ("vs_train", "relative_copy_share"),
    "memorization_rate_real": ("vs_real", "memorization_rate"),
    "copy_share_real": ("vs_real", "copy_share"),
    "copy_share_calibrated": ("calibration", "copy_share_calibrated"),
    "near_share": ("calibration", "near_share"),
}


@dataclass(frozen=True)
class Scenario:
    """A synthetic copier: its copy share per cycle and how it copies."""
    name: str
    copy_share: tuple[float, ...]    # p_n for cycles 1, 2, ...
    precision: float = 6.0           # copy noise, grey levels (std per pixel)
    follows_spacing: bool = False    # precision scales with D_n's spacing (relative to D_1's)
    favourites: Optional[int] = None # copies only the first k images of D_n (twins in D_{n+1})
    fresh: bool = False              # does not copy: draws new real images (a generalizer, no contraction)
    blend: Optional[tuple[float, float]] = None  # a copy blends toward a neighbour by e ~ U(a, b): model-like error
    structured: Optional[float] = None  # a copy moves toward a neighbour by this many px-L2: error of fixed size
    tighten: Optional[float] = None  # fresh: each cycle's draws move this share closer to their class centre
    interpolant: tuple[float, float] = INTERPOLANT  # a non-copy's l ~ U(a, b)

    @property
    def cycles(self) -> int:
        return len(self.copy_share)


SCENARIOS = (
    Scenario("constant copier, fine fixed precision", (0.4,) * 5, precision=2.0),
    Scenario("constant copier, coarse fixed precision", (0.4,) * 5),
    Scenario("rising copier", (0.2, 0.4, 0.6, 0.8, 0.95)),
    Scenario("falling copier", (0.9, 0.7, 0.5, 0.35, 0.2)),
    Scenario("copier as loose as the set is spread", (0.6,) * 5, precision=3.0, follows_spacing=True),
    Scenario("non-copier that contracts", (0.0,) * 5),
    Scenario("twins: copies of a few favourites", (0.6,) * 5, favourites=8),
    Scenario("generalizer: fresh real images", (0.0,) * 5, fresh=True),
    Scenario("constant copier with model-like error", (0.5,) * 5, precision=2.0, blend=(0.02, 0.15)),
    Scenario("rising copier with model-like error", (0.2, 0.4, 0.6, 0.8, 0.95), precision=2.0, blend=(0.02, 0.15)),
    Scenario("constant copier, structured error of 20 px-L2", (0.4,) * 5, precision=2.0, structured=20.0),
    Scenario("constant copier, structured error of 40 px-L2", (0.4,) * 5, precision=2.0, structured=40.0),
    Scenario("constant copier, structured error of 80 px-L2", (0.4,) * 5, precision=2.0, structured=80.0),
    Scenario("rising copier, structured error of 40 px-L2", (0.2, 0.4, 0.6, 0.8, 0.95), precision=2.0,
             structured=40.0),
    Scenario("contracting generalizer: fresh images, clusters tighten", (0.0,) * 5, fresh=True, tighten=0.3),
    Scenario("non-copier that contracts, interpolants l ~ U(0.05, 0.95)", (0.0,) * 5, interpolant=WIDE),
    Scenario("constant copier, structured error of 40 px-L2, interpolants l ~ U(0.05, 0.95)", (0.4,) * 5,
             precision=2.0, structured=40.0, interpolant=WIDE),
)


def _spacing(x: np.ndarray) -> float:
    """Median distance from each image to its nearest other image (pixel L2)."""
    from ..measure.knn import knn
    return float(np.median(knn(x, None, k=1).dist[:, 0]))


def synthetic_samples(train: ImageSet, p: float, precision: float, m: int, rng: np.random.Generator,
                      cycle: int, favourites: Optional[int] = None, blend: Optional[tuple[float, float]] = None,
                      structured: Optional[float] = None, interpolant: tuple[float, float] = INTERPOLANT
                      ) -> tuple[ImageSet, np.ndarray]:
    """(m samples with provenance (cycle, i), (m,) bool copy label) of a synthetic model of ``train``."""
    from ..measure.knn import knn
    x = train.flat().astype(np.float64)
    n = len(x)
    nb = knn(x.astype(np.float32), None, k=min(n - 1, 8))
    copy = rng.random(m) < p
    src = rng.integers(0, min(n, favourites or n), m)
    out = np.empty((m, x.shape[1]))
    noise = rng.normal(size=(m, x.shape[1]))
    lam = rng.uniform(*interpolant, m)
    eps = rng.uniform(*blend, m) if blend is not None else np.zeros(m)
    pick = rng.integers(0, 3, m)
    for i in range(m):
        z = x[src[i]]
        distinct = nb.idx[src[i]][nb.dist[src[i]] > DISTINCT * np.sqrt(x.shape[1])][:3]
        partner = x[distinct[pick[i] % len(distinct)]] if len(distinct) else z
        if copy[i] and structured is not None:  # a move of fixed size toward the neighbour, whatever D_n's spacing
            gap = np.linalg.norm(partner - z)
            out[i] = z + (structured / gap) * (partner - z) + precision * noise[i] if gap > 0 else z
        elif copy[i]:
            out[i] = (1 - eps[i]) * z + eps[i] * partner + precision * noise[i]
        else:
            out[i] = (1 - lam[i]) * z + lam[i] * partner
    images = np.clip(np.round(out), 0, 255).astype(np.uint8).reshape(m, *train.shape)
    return make_set(images, cycle=cycle), copy | _identical(images, train)


def _identical(images: np.ndarray, train: ImageSet) -> np.ndarray:
    """(m,) bool: the image is pixel-identical to a training image (an exact copy at 8 bits)."""
    from ..measure.knn import knn
    return knn(images.reshape(len(images), -1).astype(np.float32), train.flat().astype(np.float32),
               k=1).dist[:, 0] == 0


def fresh_samples(pool: Optional[ImageSet], train: ImageSet, m: int, rng: np.random.Generator,
                  cycle: int, tighten: Optional[float] = None) -> tuple[ImageSet, np.ndarray]:
    """m held-out real images (a generalizer: new images of the data's distribution); with ``tighten``
    each moved a share 1 - (1 - tighten)^(cycle - 1) of the way to its class's centre in the pool (a
    generalizer whose clusters tighten: it contracts without copying). Copies: none, except an image
    pixel-identical to a training image."""
    if pool is None or len(pool) < 2:
        raise ValueError("a fresh scenario needs a pool of held-out real images")
    pick = rng.choice(len(pool), m, replace=m > len(pool))
    images = pool.images[pick]
    if tighten:
        x = images.reshape(m, -1).astype(np.float64)
        labels = pool.labels[pick]
        centres = {c: pool.images[pool.labels == c].reshape(-1, x.shape[1]).mean(0) for c in np.unique(labels)}
        keep = (1 - tighten) ** (cycle - 1)
        x = np.stack([centres[c] for c in labels]) + keep * (x - np.stack([centres[c] for c in labels]))
        images = np.clip(np.round(x), 0, 255).astype(np.uint8).reshape(images.shape)
    return make_set(images, cycle=cycle), _identical(images, train)


def run_suite(sources: tuple[str, ...], sizes: tuple[int, ...], seeds: tuple[int, ...], m: int = 1024,
              scenarios: tuple[Scenario, ...] = SCENARIOS) -> list[dict]:
    """Every scenario from every real source and size N, on every seed (R: the seeded class-balanced
    subset of that seed): the rows of ``run_loop``, each tagged with its data set."""
    from ..core.config import DataConfig
    from ..data.sources import load_real, load_source
    rows = []
    for source in sources:
        for n in sizes:
            for seed in seeds:
                cfg = DataConfig(source=source, n=n)
                both = load_real(cfg, seed, n=min(n + m, len(load_source(cfg))))  # R, then held-out images
                real, pool = both.take(np.arange(n)), both.take(np.arange(n, len(both)))
                rows += [{**row, "data": source} for sc in scenarios for row in run_loop(real, sc, seed, m, pool=pool)]
    return rows


def run_loop(real: ImageSet, scenario: Scenario, seed: int, m: int = 1024, oversample: float = 2.0,
             pool: Optional[ImageSet] = None) -> list[dict]:
    """One synthetic replace loop from ``real`` (= R = D_1): per cycle, the truth and every measure.
    ``pool``: held-out real images of the same source, which a ``fresh`` scenario draws from."""
    from ..measure.evaluate import evaluate_sets
    rng = np.random.default_rng(seed)
    cfg = EvalConfig(n_generated=m, bootstrap=0)
    train, roots = real, real.provenance
    first = _spacing(real.flat())
    rows = []
    for cycle, p in enumerate(scenario.copy_share, start=1):
        spacing = _spacing(train.flat())
        precision = scenario.precision * (spacing / first if scenario.follows_spacing else 1.0)
        if scenario.fresh:
            gen, copy = fresh_samples(pool, train, m, rng, cycle, scenario.tighten)
        else:
            gen, copy = synthetic_samples(train, p, precision, m, rng, cycle, scenario.favourites, scenario.blend,
                                          scenario.structured, scenario.interpolant)
        # the calibration's planted copies made by this cycle's "model": its own way of copying (the model's
        # near copies in a study, measure.calibration), drawn from a stream of their own
        own = synthetic_samples(train, 1.0, precision, PLANTED // 2, np.random.default_rng([seed, cycle]), cycle,
                                scenario.favourites, scenario.blend, scenario.structured)[0]
        metrics, arrays = evaluate_sets(gen, train, real, cfg, seed, train_roots=roots,
                                        model_copies=own.flat())
        row = {"scenario": scenario.name, "d": int(np.prod(real.shape)), "n": len(real), "seed": seed,
               "cycle": cycle, "m": m, "truth": float(copy.mean()), "spacing": spacing, "precision": precision}
        for name, (part, field) in MEASURES.items():
            row[name] = getattr(getattr(metrics, part), field)
        rows.append(row)
        keep = rng.choice(int(round(oversample * len(real))), len(real), replace=False)
        train, roots = gen.take(keep), arrays["root"][keep]
    return rows




CONTRACTED = Scenario("constant copier, coarse fixed precision", (0.4,) * 5)  # D_5 spacing ~60 px-L2 on digits


def contracted_sets(real: ImageSet, pool: ImageSet, seed: int, h: int = 64, scenario: Scenario = CONTRACTED,
                    oversample: float = 2.0) -> list[tuple[ImageSet, ImageSet]]:
    """(D_n, non-members) of cycles 1, 2, ... of a synthetic replace loop from ``real`` = D_1: at cycle 1
    the first ``h`` images of ``pool`` (real, outside D_1), later ``h`` of the N + h images drawn at
    random from the r*(N + h) samples of the scenario's model of D_{n-1}, as a study holds them out.
    The default scenario contracts D_n as the vanilla chains of a study do (digits, N = 32: D_1's median
    1-NN spacing ~470 px-L2, D_5's ~60; the factorial's vanilla chains reach 49-115): the contracted
    training sets on which the membership test and the probes are validated."""
    rng = np.random.default_rng(seed)
    n = len(real)
    sets = [(real, pool.take(np.arange(min(h, len(pool)))))]
    for cycle, p in enumerate(scenario.copy_share[1:], start=2):
        m = int(round(oversample * (n + h)))
        gen, _ = synthetic_samples(sets[-1][0], p, scenario.precision, m, rng, cycle, scenario.favourites,
                                   scenario.blend, scenario.structured, scenario.interpolant)
        pick = rng.permutation(m)[:n + h]
        sets.append((gen.take(np.sort(pick[:n])), gen.take(np.sort(pick[n:]))))
    return sets


def planted_model_rows(model_dir, train: ImageSet, pool: ImageSet, diffusion, sample, seed: int,
                       m: int = 512) -> list[dict]:
    """Ground truth from a trained model (docs/method.md §7): every copy measure on four groups of m
    images judged against the model's training set: the model's own samples (truth unknown; the
    model's memorizer share beside them), planted exact copies of training images, planted near
    copies carrying the model's own error (a training image noised to abar_t = NEAR_ABAR, then the
    model's DDIM from there: copies by construction), and fresh held-out real images (not copies).
    One row per group; a measure's value on a planted group is its recall (or false-positive rate)."""

    import torch

    from ..core.seeds import derive_seed
    from ..data.images import to_model, to_uint8
    from ..diffusion.noise import counter_normal
    from ..diffusion.process import make_scheduler, sample_seed
    from ..diffusion.sample import generate
    from ..diffusion.train import load_unet
    from ..measure.memorization import nn_report
    from ..measure.probe import probe_model, reverse_from, start
    rng = np.random.default_rng(seed)
    own = generate(Path(model_dir), m, derive_seed(seed, 1, "sample"), sample, diffusion).images
    src = rng.integers(0, len(train), m)
    unet = load_unet(Path(model_dir), torch.device("cpu"))
    scheduler = make_scheduler(diffusion, "ddim")
    x0 = to_model(train.images[src])
    near_seed = derive_seed(seed, 1, "planted-near")
    noise = counter_normal(torch.tensor([sample_seed(near_seed, i) for i in range(m)]), 0, tuple(x0.shape[1:]),
                           torch.device("cpu"))
    near = to_uint8(reverse_from(lambda x, t: unet(x, t).sample, scheduler, x0, noise,
                                 start(scheduler, 50, NEAR_ABAR)))
    fresh = pool.images[rng.choice(len(pool), min(m, len(pool)), replace=False)]
    probe = probe_model(Path(model_dir), train.images, derive_seed(seed, 1, "probe"), diffusion)
    ref = train.flat().astype(np.float64)
    rows = []
    for group, images, truth in (("model samples", own, None), ("planted exact copies", train.images[src], 1.0),
                                 ("planted near copies (model's error)", near, 1.0), ("fresh real images", fresh, 0.0)):
        report, _ = nn_report(images.reshape(len(images), -1).astype(np.float64), ref)
        row = {"model": Path(model_dir).parent.name, "n": len(train), "group": group, "m": len(images),
               "truth": truth, "memorizer_share": probe.memorizer_share}
        row.update({name: getattr(report, name) for name in ("copy_share", "memorization_rate",
                                                             "memorization_rate_lineage", "relative_copy_share")})
        rows.append(row)
    return rows


PLANTED_MODELS = ((16, 2000), (32, 1000), (512, 1000))  # (N, steps): memorizing side, the default, generalizing side


def planted_models(config: Path, out: Path, work: Path, samples: int = 512, seed: int = 0) -> list[dict]:
    """The default study's model (``config``) trained on both sides of its phase diagram and at the
    default's own place (digits, N = 16 for 2000 steps, N = 32 for 1000, N = 512 for 1000), each
    scored by :func:`planted_model_rows`; the rows, also written to ``out`` as JSON lines."""
    import dataclasses
    import json

    from ..core.config import DataConfig
    from ..core.io import atomic_write_text
    from ..data.sources import load_real
    from ..diffusion.train import train
    from ..loop.experiment import load_config
    cfg = load_config(config)
    rows = []
    for n, steps in PLANTED_MODELS:
        both = load_real(DataConfig(source="digits", n=n), seed, n=min(n + samples, 1797))
        real, pool = both.take(np.arange(n)), both.take(np.arange(n, len(both)))
        model = train(real.images, dataclasses.replace(cfg.train, steps=steps), cfg.diffusion, cfg.model.preset,
                      Path(work) / f"digits_n{n}_s{steps}", seed, runtime=cfg.runtime)
        rows += [{**r, "steps": steps} for r in planted_model_rows(model, real, pool, cfg.diffusion, cfg.sample,
                                                                   seed, samples)]
    atomic_write_text(out, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    return rows
