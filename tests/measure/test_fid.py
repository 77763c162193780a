import numpy as np
import pytest
import torch
from torchmetrics.image.fid import FrechetInceptionDistance

from collapse_diffusion.core.config import DataConfig, EvalConfig
from collapse_diffusion.core.errors import UserError
from collapse_diffusion.data.sources import load_real
from collapse_diffusion.measure.features import ClassifierNet, Extractor, classifier_extractor, inception_extractor
from collapse_diffusion.measure.fid import frechet_distance


def test_fd_identity_and_shift():
    x = np.random.default_rng(0).normal(size=(500, 8))
    assert abs(frechet_distance(x, x)) < 1e-6
    assert frechet_distance(x, x + 1.0) == pytest.approx(8.0, rel=1e-6)  # ||mu shift||^2
    assert frechet_distance(x, x + 2.0) > frechet_distance(x, x + 1.0)


def test_formula_matches_scipy_sqrtm_and_a_closed_form():
    """The formula against an independent implementation (scipy's matrix square root) on correlated
    features, and against the closed form for diagonal Gaussians: ||mu||^2 + sum (s_a - s_b)^2."""
    from scipy.linalg import sqrtm

    from collapse_diffusion.measure.fid import frechet_from_stats
    rng = np.random.default_rng(3)
    a = rng.normal(size=(400, 6)) @ rng.normal(size=(6, 6))
    b = rng.normal(0.5, 1.0, (300, 6)) @ rng.normal(size=(6, 6))
    ma, mb, sa, sb = a.mean(0), b.mean(0), np.cov(a.T), np.cov(b.T)
    ref = float(np.sum((ma - mb) ** 2) + np.trace(sa + sb - 2 * sqrtm(sa @ sb).real))
    assert frechet_distance(a, b) == pytest.approx(ref, rel=1e-9)
    sd_a, sd_b, mu = np.array([1.0, 2.0, 0.5]), np.array([2.0, 1.0, 0.5]), np.array([3.0, 0.0, 4.0])
    t = lambda x: torch.as_tensor(x, dtype=torch.float64)  # noqa: E731
    fd = float(frechet_from_stats(t(mu), t(np.diag(sd_a ** 2)), t(np.zeros(3)), t(np.diag(sd_b ** 2))))
    assert fd == pytest.approx(25.0 + 1.0 + 1.0, rel=1e-12)


def test_parity_with_torchmetrics_direct():
    torch.manual_seed(0)
    net = ClassifierNet(1, 10).eval()
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (64, 1, 8, 8)).astype(np.uint8)
    b = rng.integers(0, 200, (48, 1, 8, 8)).astype(np.uint8)
    tm = FrechetInceptionDistance(feature=net, normalize=False)
    tm.update(torch.from_numpy(a), real=True)
    tm.update(torch.from_numpy(b), real=False)
    ex = Extractor("test", net, {})
    assert frechet_distance(ex(a), ex(b)) == pytest.approx(float(tm.compute()), rel=1e-4)


def test_classifier_is_cached_with_accuracy(tmp_path):
    real = load_real(DataConfig(n=600), seed=0)
    cfg = EvalConfig(classifier_steps=150)
    ex = classifier_extractor(real, "digits", tmp_path, cfg, seed=0)
    assert ex.name == "classifier-digits" and ex.info["heldout_accuracy"] > 0.8
    assert ex.info["n_heldout"] == 120
    again = classifier_extractor(real, "digits", tmp_path, cfg, seed=0)
    assert np.allclose(ex(real.images[:10]), again(real.images[:10]))
    # a changed hyperparameter is a different classifier: it is trained anew, not read from the cache
    other = classifier_extractor(real, "digits", tmp_path, EvalConfig(classifier_steps=150, classifier_lr=1e-4), seed=0)
    assert other.info["lr"] == 1e-4 and len(list(tmp_path.iterdir())) == 2


def test_missing_inception_weights_is_one_line_error(tmp_path):
    with pytest.raises(UserError, match="Inception FID weights not found") as e:
        inception_extractor(str(tmp_path / "nope.pth"))
    assert "\n" not in str(e.value)


def test_fd_bootstrap_interval_covers_the_value_and_narrows_with_n():
    from collapse_diffusion.measure.fid import fd_bootstrap
    rng = np.random.default_rng(0)
    real = rng.normal(size=(2000, 4))
    small, large = rng.normal(0.3, 1, (200, 4)), rng.normal(0.3, 1, (2000, 4))
    lo, hi = fd_bootstrap(real, small, 200, seed=1)
    assert lo <= frechet_distance(real, small) <= hi
    lo2, hi2 = fd_bootstrap(real, large, 200, seed=1)
    assert lo2 <= frechet_distance(real, large) <= hi2 and hi2 - lo2 < hi - lo
    assert fd_bootstrap(real, small, 50, seed=1) == fd_bootstrap(real, small, 50, seed=1)


def test_precision_and_recall_equal_their_definition_and_read_a_collapse():
    """torch-fidelity's improved precision and recall (k = 3) on given features equal the definition
    computed here by brute force; a generated set shrunk onto the real mode has high precision and
    low recall."""
    from scipy.spatial.distance import cdist

    from collapse_diffusion.measure.fid import precision_recall
    rng = np.random.default_rng(0)
    real, gen = rng.normal(size=(300, 6)), rng.normal(size=(200, 6)) + 0.5

    def radius(x):
        return np.sort(cdist(x, x), 1)[:, 3]  # the 3rd neighbour (column 0 is the point itself)
    precision = np.mean((cdist(gen, real) <= radius(real)[None]).any(1))
    recall = np.mean((cdist(real, gen) <= radius(gen)[None]).any(1))
    assert precision_recall(real, gen) == pytest.approx((precision, recall), abs=1e-6)
    p, r = precision_recall(real, 0.2 * rng.normal(size=(300, 6)))
    assert p > 0.95 and r < 0.3


def test_real_features_are_cached_per_content_and_network(tmp_path):
    """cached_features computes the features of an image set once per content and network: the same
    images again are read back (equal values, no forward pass), other images or other weights are
    computed anew."""
    from collapse_diffusion.measure.features import cached_features
    calls = []

    class Counting(ClassifierNet):
        def forward(self, images):
            calls.append(len(images))
            return super().forward(images)

    torch.manual_seed(0)
    ex = Extractor("classifier-test", Counting(1, 10).eval(), {})
    images = np.random.default_rng(0).integers(0, 256, (20, 1, 8, 8)).astype(np.uint8)
    first = cached_features(ex, images, tmp_path)
    assert np.array_equal(first, ex(images)) and first.dtype == np.float64 and calls == [20, 20]
    assert np.array_equal(cached_features(ex, images.copy(), tmp_path), first) and calls == [20, 20]
    cached_features(ex, images[::-1], tmp_path)
    assert calls == [20, 20, 20]
    torch.manual_seed(1)
    other = Extractor("classifier-test", Counting(1, 10).eval(), {})
    assert not np.array_equal(cached_features(other, images, tmp_path), first) and len(calls) == 4
    for stored in (tmp_path / "features").iterdir():
        stored.write_bytes(b"torn")  # a damaged file is computed again
    assert np.array_equal(cached_features(ex, images, tmp_path), first) and len(calls) == 5
