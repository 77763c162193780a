import pytest
import torch

from collapse_diffusion.core.config import DiffusionConfig
from collapse_diffusion.core.errors import UserError
from collapse_diffusion.diffusion.model import build_unet
from collapse_diffusion.diffusion.process import diffusion_loss, make_scheduler, sample_loop


def test_schedule_is_the_papers():
    s = make_scheduler(DiffusionConfig())
    assert s.config.num_train_timesteps == 1000 and s.config.prediction_type == "epsilon"
    assert torch.isclose(s.betas[0], torch.tensor(1e-4)) and torch.isclose(s.betas[-1], torch.tensor(0.02))
    assert torch.allclose(s.betas, torch.linspace(1e-4, 0.02, 1000))


@pytest.mark.parametrize("sampler,steps", [("ddpm", 6), ("ddim", 4)])
def test_per_sample_seeds_independent_of_batch(sampler, steps):
    torch.manual_seed(0)
    unet = build_unet("digits-tiny", 1, 8).eval()
    sched = make_scheduler(DiffusionConfig(), sampler)
    dev = torch.device("cpu")
    together = sample_loop(unet, sched, range(5), 11, (1, 8, 8), steps, dev)
    alone = torch.cat([sample_loop(unet, sched, [i], 11, (1, 8, 8), steps, dev) for i in (3, 4)])
    assert torch.allclose(together[3:], alone, atol=1e-5)
    other_seed = sample_loop(unet, sched, [3], 12, (1, 8, 8), steps, dev)
    assert not torch.allclose(other_seed, alone[:1])


def test_loss_is_the_noise_error_at_the_closed_form_noising():
    """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, abar_t = prod_s (1 - beta_s), betas linear in
    [1e-4, 0.02] (docs/method.md §6): an oracle that reads eps back from (x_t, t) has loss 0, and a
    model predicting 0 pays E[eps^2]."""
    from types import SimpleNamespace
    abar = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64), 0)
    torch.manual_seed(0)
    x0, noise = torch.rand(4, 1, 8, 8) * 2 - 1, torch.randn(4, 1, 8, 8)
    t = torch.tensor([0, 10, 500, 999])
    a = abar[t].view(-1, 1, 1, 1)

    def oracle(xt, tt):
        return SimpleNamespace(sample=((xt.double() - a.sqrt() * x0.double()) / (1 - a).sqrt()).float())

    def zero(xt, tt):
        return SimpleNamespace(sample=torch.zeros_like(xt))

    s = make_scheduler(DiffusionConfig())
    assert float(diffusion_loss(oracle, s, x0, noise, t)) < 1e-8
    assert float(diffusion_loss(zero, s, x0, noise, t)) == pytest.approx(float(noise.square().mean()), rel=1e-6)


def test_presets_and_bad_resolution():
    assert build_unet("unet48", 3, 32).config.block_out_channels == (48, 48, 96, 96, 192, 192)
    with pytest.raises(UserError, match="divisible by 4"):
        build_unet("mnist-small", 1, 30)


@pytest.mark.parametrize("steps", [0, 10])
def test_ddpm_step_matches_diffusers(steps):
    """Our written-out ancestral step equals DDPMScheduler.step given the same noise."""
    from diffusers.utils import torch_utils

    from collapse_diffusion.diffusion.process import ddpm_step
    s = make_scheduler(DiffusionConfig(), "ddpm")
    s.set_timesteps(steps or 1000)
    x, eps, z = torch.randn(3, 1, 8, 8), torch.randn(3, 1, 8, 8), torch.randn(3, 1, 8, 8)
    orig = torch_utils.randn_tensor
    import diffusers.schedulers.scheduling_ddpm as mod
    mod.randn_tensor = lambda *a, **k: z.clone()
    try:
        for t in [int(s.timesteps[0]), int(s.timesteps[len(s.timesteps) // 2]), int(s.timesteps[-1])]:
            ref = s.step(eps, t, x).prev_sample
            assert torch.allclose(ddpm_step(s, eps, t, x, z), ref, atol=1e-5), t
    finally:
        mod.randn_tensor = orig


def test_counter_noise_is_standard_normal_and_row_independent():
    from collapse_diffusion.diffusion.noise import counter_normal
    seeds = torch.arange(2000, dtype=torch.int64) * 7919
    z = counter_normal(seeds, 3, (1, 8, 8), torch.device("cpu"))
    assert abs(float(z.mean())) < 0.01 and abs(float(z.std()) - 1) < 0.01
    assert abs(float((z[:, 0, 0, 0] * z[:, 0, 0, 1]).mean())) < 0.05      # elements uncorrelated
    assert abs(float((z[:-1].flatten() * z[1:].flatten()).mean())) < 0.01  # rows uncorrelated
    assert torch.equal(counter_normal(seeds[5:6], 3, (1, 8, 8), torch.device("cpu")), z[5:6])
    assert not torch.equal(counter_normal(seeds[5:6], 4, (1, 8, 8), torch.device("cpu")), z[5:6])
