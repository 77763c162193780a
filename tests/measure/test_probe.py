"""The memorizer share (docs/method.md §7): the model probe scores the exact memorizer of D_n 1, the
Gaussian generalizer 0, and a model that memorizes half of D_n one half."""
import numpy as np
import pytest
import torch

from collapse_diffusion.core.config import DataConfig, DiffusionConfig
from collapse_diffusion.data.sources import load_real
from collapse_diffusion.diffusion.process import make_scheduler
from collapse_diffusion.measure.probe import ABAR, gaussian, memorizer, return_report, start


@pytest.fixture(scope="module")
def train():
    return load_real(DataConfig(n=32), seed=0).images


def test_the_probe_starts_where_signal_and_noise_power_are_equal():
    sch = make_scheduler(DiffusionConfig(), "ddim")
    ts = start(sch, 50)
    abar = sch.alphas_cumprod
    assert abar[ts[0]] >= ABAR > abar[ts[0] + sch.config.num_train_timesteps // 50]
    assert ts == sorted(ts, reverse=True) and ts[-1] == 0


def test_the_exact_memorizer_scores_one_and_the_gaussian_generalizer_zero(train):
    sch = make_scheduler(DiffusionConfig(), "ddim")
    mem = return_report(memorizer(train, sch), sch, train, seed=0)
    gen = return_report(gaussian(train, sch), sch, train, seed=0)
    assert mem.memorizer_share == 1.0 and mem.ratio_median == 0.0 and mem.n_probed == 32
    assert gen.memorizer_share == 0.0 and gen.ratio_median == pytest.approx(1.0)
    assert gen.memorizer_ci95[1] < 0.12  # Clopper-Pearson at 0 of 32


def test_a_model_that_memorizes_half_of_its_training_set_scores_one_half(train):
    sch = make_scheduler(DiffusionConfig(), "ddim")
    mem, gen = memorizer(train, sch), gaussian(train, sch)

    def half(x, t):  # images 0-15 of the batch memorized, 16-31 generalized
        return torch.cat([mem(x[:16], t[:16]), gen(x[16:], t[16:])])
    r = return_report(half, sch, train, seed=0)
    assert r.memorizer_share == 0.5 and r.memorizer_ci95[0] < 0.5 < r.memorizer_ci95[1]


def test_the_probe_is_the_same_for_the_same_seed_and_differs_for_another(train):
    sch = make_scheduler(DiffusionConfig(), "ddim")
    gen = gaussian(train, sch)
    noisy = lambda x, t: gen(x, t) + 0.3 * torch.sin(7 * x)  # noqa: E731  a deterministic, imperfect model
    a, b = return_report(noisy, sch, train, seed=0), return_report(noisy, sch, train, seed=0)
    assert a.ratio_median == b.ratio_median
    assert return_report(noisy, sch, train, seed=1).ratio_median != a.ratio_median
    assert np.isfinite(a.ratio_median)


def test_the_public_copy_call_finds_planted_copies_and_probes_a_model(train, tmp_path):
    """``measure.copies.copies``: planted exact copies of training images are flagged, fresh real
    images are not; with a model folder it adds the memorizer share."""
    from collapse_diffusion.data.images import make_set
    from collapse_diffusion.diffusion.model import build_unet
    from collapse_diffusion.measure.copies import copies
    fresh = load_real(DataConfig(n=64), seed=0).images[32:]
    gen = make_set(np.concatenate([train[:16], fresh[:16]]), cycle=1)
    unet = build_unet("digits-tiny", 1, 8)
    unet.save_pretrained(tmp_path / "model")
    r = copies(gen, make_set(train), model=tmp_path / "model")
    assert r.flags[:16].all() and not r.flags[16:].any() and r.copy_share == 0.5
    assert (r.nn_index[:16] == np.arange(16)).all() and r.n_generated == 32 and r.n_train == 32
    assert 0.0 <= r.memorizer_share <= 1.0 and r.memorizer_ci95[0] <= r.memorizer_share
