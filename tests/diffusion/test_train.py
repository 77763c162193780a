import json

import pytest
import torch
from diffusers import UNet2DModel

from collapse_diffusion.core.config import DataConfig, DiffusionConfig, RuntimeConfig, TrainConfig
from collapse_diffusion.core.errors import TrainingDiverged
from collapse_diffusion.data.sources import load_real
from collapse_diffusion.diffusion import train as train_mod

CFG = TrainConfig(steps=8, batch_size=16, warmup_steps=2, checkpoint_every=3)
CPU = RuntimeConfig(device="cpu")


class Killed(Exception):
    pass


def images():
    return load_real(DataConfig(n=32), seed=0).images


def weights(path):
    return {k: v.clone() for k, v in UNet2DModel.from_pretrained(path, subfolder="unet").state_dict().items()}


def test_resume_equals_uninterrupted_bitwise(tmp_path):
    x = images()
    full = weights(train_mod.train(x, CFG, DiffusionConfig(), "digits-tiny", tmp_path / "a", seed=5, runtime=CPU))

    def kill_after_5(step):
        if step == 5:   # checkpoint at 3, steps 4-5 are lost
            raise Killed

    with pytest.raises(Killed):
        train_mod.train(x, CFG, DiffusionConfig(), "digits-tiny", tmp_path / "b", seed=5, on_step=kill_after_5,
                        runtime=CPU)
    assert (tmp_path / "b" / "checkpoint" / "state.pt").exists() and not (tmp_path / "b" / "model").exists()
    resumed = weights(train_mod.train(x, CFG, DiffusionConfig(), "digits-tiny", tmp_path / "b", seed=5, runtime=CPU))
    assert full.keys() == resumed.keys()
    assert all(torch.equal(full[k], resumed[k]) for k in full)
    # the resumed log keeps the rows from before the kill; the checkpoint goes once the model is final
    steps = lambda d: [json.loads(r)["step"] for r in (tmp_path / d / "train_log.jsonl").read_text().splitlines()]  # noqa: E731
    assert steps("b") == steps("a") and steps("a")[0] == 3
    assert not (tmp_path / "a" / "checkpoint").exists() and not (tmp_path / "b" / "checkpoint").exists()


def test_model_is_diffusers_format_and_log_written(tmp_path):
    from diffusers import DDPMPipeline, DDPMScheduler
    path = train_mod.train(images(), CFG, DiffusionConfig(), "digits-tiny", tmp_path, seed=0, runtime=CPU)
    unet = UNet2DModel.from_pretrained(path, subfolder="unet")
    assert unet.config.sample_size == 8 and (path / "unet" / "diffusion_pytorch_model.safetensors").exists()
    pipe = DDPMPipeline.from_pretrained(path)
    assert isinstance(pipe.scheduler, DDPMScheduler) and pipe.scheduler.config.num_train_timesteps == 1000
    out = pipe(batch_size=2, num_inference_steps=3, generator=torch.Generator().manual_seed(0), output_type="np")
    assert out.images.shape == (2, 8, 8, 1)
    rows = (tmp_path / "train_log.jsonl").read_text().splitlines()
    assert rows and '"images_per_s"' in rows[-1]


def test_nonfinite_loss_stops(tmp_path, monkeypatch):
    monkeypatch.setattr(train_mod, "diffusion_loss", lambda *a: torch.tensor(float("nan"), requires_grad=True))
    with pytest.raises(TrainingDiverged, match="non-finite|nan"):
        train_mod.train(images(), CFG, DiffusionConfig(), "digits-tiny", tmp_path, seed=0, runtime=CPU)
    assert not (tmp_path / "model").exists()


def test_tf32_is_scoped_and_fast_false_reaches_sampling(tmp_path, monkeypatch):
    """TF32 set for a stage comes back as it was (even on error); `runtime.fast=false` and
    `runtime.compile=false` reach sampling as they reach training, on any device."""
    from collapse_diffusion.core import runtime as distributed
    from collapse_diffusion.loop import stages
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    with pytest.raises(RuntimeError):
        with distributed.tf32(True):
            assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
            raise RuntimeError("stage failed")
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before
    cuda = torch.device("cuda", 0)
    assert distributed.fast_kernels(None, cuda) and not distributed.fast_kernels(False, cuda)
    cpu = torch.device("cpu")
    assert distributed.fast_kernels(True, cpu) and not distributed.fast_kernels(None, cpu)
    seen = {}

    def fake_generate(model, n, seed, sample, diff, runtime, cycle, progress=True):
        seen["runtime"] = runtime
        raise RuntimeError("stop")

    from collapse_diffusion.diffusion import sample
    monkeypatch.setattr(sample, "generate", fake_generate)
    from collapse_diffusion.core.layout import CycleFiles
    from collapse_diffusion.loop.experiment import load_config
    from collapse_diffusion.loop.study import Study
    study = Study(tmp_path, load_config(None, ["runtime.fast=false", "runtime.compile=false"]))
    with pytest.raises(RuntimeError):
        stages.stage_sample(study, CycleFiles(tmp_path), 1, 4)
    assert seen["runtime"].fast is False and seen["runtime"].compile is False
    assert not distributed.compiled(False, cuda) and distributed.compiled(None, cuda)


def test_cpu_fast_path_is_reproducible_and_follows_the_fp32_loss(tmp_path, monkeypatch, caplog):
    """runtime.fast=true on a CPU: twice the same weights bit for bit (same seed, one machine), and a
    loss curve within 2% of the fp32 reference's at every logged step; on a CPU without bf16 units
    it falls back to fp32 and says so in the log."""
    import logging

    from collapse_diffusion.core import runtime as distributed
    cfg = TrainConfig(steps=100, batch_size=32, warmup_steps=10, checkpoint_every=10 ** 9)
    fast = RuntimeConfig(device="cpu", fast=True, threads=1)
    run = lambda name, rt: train_mod.train(images(), cfg, DiffusionConfig(), "digits-tiny", tmp_path / name,  # noqa: E731
                                           seed=3, runtime=rt)
    log_of = lambda name: (tmp_path / name / "train_log.jsonl").read_text().splitlines()  # noqa: E731
    losses = lambda name: [json.loads(r)["loss"] for r in log_of(name)]  # noqa: E731
    a, b = weights(run("a", fast)), weights(run("b", fast))
    assert all(torch.equal(a[k], b[k]) for k in a)
    run("ref", RuntimeConfig(device="cpu", fast=False, threads=1))
    assert losses("a") == pytest.approx(losses("ref"), rel=0.02)
    monkeypatch.setattr(distributed, "bf16_units", lambda: None)
    with caplog.at_level(logging.INFO):
        run("fp32", fast)
    assert "no bf16 units on this CPU, so fp32" in caplog.text
    assert losses("fp32") == pytest.approx(losses("ref"), rel=1e-4)


def test_cpu_bf16_attention_computes_the_same_function():
    """The fast path's attention processor swap changes the kernel, not the model: in fp32 the
    swapped UNet's output equals the default one's to float rounding."""
    from diffusers.models.attention_processor import Attention, AttnProcessor

    from collapse_diffusion.diffusion.model import build_unet, cpu_bf16_attention
    torch.manual_seed(0)
    unet = build_unet("digits-tiny", 1, 8).eval()
    x, t = torch.randn(4, 1, 8, 8), torch.tensor([1, 100, 500, 999])
    with torch.no_grad():
        before = unet(x, t).sample
        after = cpu_bf16_attention(unet)(x, t).sample
    swapped = [m for m in unet.modules() if isinstance(m, Attention)]
    assert swapped and all(isinstance(m.processor, AttnProcessor) for m in swapped)
    assert torch.allclose(before, after, atol=1e-5)
