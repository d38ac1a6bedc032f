"""CIFAR-10 in memory: loading, the paper's 80/20 train/validation split, batching.

The data directory is the `data_dir` argument or, failing that, the environment
variable CIFAR10_DIR. Two layouts are recognised by looking at it:

    torchvision   <dir>/cifar-10-batches-py/{data_batch_1..5, test_batch}  (or <dir> itself)
                  as written by torchvision.datasets.CIFAR10(download=True)
    imagefolder   <dir>/train/<class>/*.{jpg,png}, <dir>/test/<class>/*.{jpg,png}
                  a folder's label is its name's index in CLASSES (the canonical
                  CIFAR-10 order), never its rank among the folders a split has:
                  both splits must hold exactly the ten class folders (a missing or
                  unknown one is refused, naming it); hidden entries (".*", such as
                  .ipynb_checkpoints or .DS_Store) are ignored

The images are decoded once into uint8 tensors and cached (a torch file) in a writable
cache directory, never inside the data directory. Training then works on float
tensors in memory: no per-image Python in the loop. The cache file's name is a key
over everything the decoded tensors depend on: the data files (names, sizes, times),
the class list, the cache format and the decoder (Pillow's, numpy's and torch's
versions). A cache file that cannot be read, or whose contents are not what its key
promises, is rebuilt with a warning; it is written atomically (temporary file, rename).

Split (paper sec. 2.4): 20 % of the 50,000 training images are held out for validation,
chosen by a permutation seeded with the run's seed; training uses the other 80 %;
testing uses the 10,000 test images. Inputs are normalised per channel with the mean
and standard deviation of the training images actually used.

Augmentation (`augment`, training batches only; validation and test never): AUGMENTATIONS
names the choices. "crop_flip" is the standard CIFAR-10 recipe on a batch x (B, C, H, W):

    padded  = x with `pad` = 4 zero pixels on every side   (zero in *normalised* space, i.e.
              each channel's training mean, not black: the batches are already normalised)
    dy, dx  ~ uniform on {0, ..., 2 pad}, per image          (the crop's top-left corner)
    flip    ~ uniform on {0, 1}, per image
    out[b, c, i, j] = padded[b, c, dy[b] + i, dx[b] + j'],   j' = W-1-j if flip[b] else j

drawn from the caller's generator in that order (dy, dx for all images, then flip), as one
gather over the batch: no per-image Python.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ENV_DATA = "CIFAR10_DIR"
ENV_CACHE = "SNN_CACHE_DIR"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
TEST_SUBSET_SEED = 0  # a test subset is the same for every run, so runs stay comparable

HOW_TO_PROVIDE = (
    "Provide CIFAR-10 in one of two ways: set CIFAR10_DIR (or the data_dir parameter) to "
    "a folder holding torchvision's 'cifar-10-batches-py' (on a machine with internet: "
    "python -c \"import torchvision; torchvision.datasets.CIFAR10('DIR', download=True)\"), "
    "or to an ImageFolder tree with train/<class>/*.jpg and test/<class>/*.jpg."
)


class DataNotFoundError(FileNotFoundError):
    """No CIFAR-10 where we looked; the message says where and how to provide it."""


class DataError(ValueError):
    """A CIFAR-10 directory that is there but defective; the message names the defect."""


# ---------------------------------------------------------------------------
# Finding and decoding.


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The data directory from the argument or $CIFAR10_DIR, checked to hold CIFAR-10."""
    given = data_dir if data_dir not in (None, "") else os.environ.get(ENV_DATA)
    if not given:
        raise DataNotFoundError(f"no CIFAR-10 directory given (data_dir or ${ENV_DATA}). {HOW_TO_PROVIDE}")
    path = Path(given).expanduser().resolve()
    layout(path)  # raises if nothing usable is there
    return path


def layout(path: Path) -> str:
    """'torchvision' or 'imagefolder' for a data directory; DataNotFoundError otherwise.

    An ImageFolder tree's class folders are checked here (a directory listing, no
    decoding), so a defective tree is refused before a run starts."""
    if _batches_dir(path) is not None:
        return "torchvision"
    if (path / "train").is_dir() and (path / "test").is_dir():
        for split in ("train", "test"):
            _class_folders(path / split)
        return "imagefolder"
    raise DataNotFoundError(
        f"no CIFAR-10 found in {path} (looked for {path / 'cifar-10-batches-py'}, "
        f"{path}/data_batch_1 and {path}/train + {path}/test). {HOW_TO_PROVIDE}"
    )


def _batches_dir(path: Path) -> Path | None:
    for candidate in (path / "cifar-10-batches-py", path):
        if (candidate / "data_batch_1").is_file() and (candidate / "test_batch").is_file():
            return candidate
    return None


def _read_torchvision(path: Path):
    """The pickled batches: rows of 3072 bytes, channel-major, as the CIFAR-10 page says."""
    folder = _batches_dir(path)

    def read(names):
        xs, ys = [], []
        for name in names:
            with open(folder / name, "rb") as f:
                entry = pickle.load(f, encoding="latin1")
            xs.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            ys.append(np.asarray(entry["labels"], dtype=np.int64))
        return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))

    return read([f"data_batch_{i}" for i in range(1, 6)]) + read(["test_batch"])


def _visible(folder: Path):
    """The entries of `folder` whose names do not start with '.' (editors', Jupyter's, macOS's)."""
    return (p for p in folder.iterdir() if not p.name.startswith("."))


def _image_files(folder: Path) -> list[Path]:
    """A class folder's images, sorted by name."""
    return sorted(p for p in _visible(folder) if p.suffix.lower() in IMAGE_SUFFIXES)


def _class_folders(split_dir: Path) -> list[Path]:
    """The ten class folders of one split, in CLASSES order; DataError naming any missing or unknown."""
    found = {p.name: p for p in _visible(split_dir) if p.is_dir()}
    missing = [c for c in CLASSES if c not in found]
    unknown = sorted(set(found) - set(CLASSES))
    if missing or unknown:
        problems = ([f"missing class folder(s) {', '.join(missing)}"] if missing else []) + (
            [f"unknown folder(s) {', '.join(unknown)}"] if unknown else []
        )
        raise DataError(
            f"{split_dir}: {'; '.join(problems)}. An ImageFolder tree must hold exactly the CIFAR-10 "
            f"class folders {', '.join(CLASSES)} in both train/ and test/ (hidden '.*' entries are ignored)."
        )
    return [found[c] for c in CLASSES]


def _read_imagefolder(path: Path):
    from PIL import Image

    def read(split):
        images, labels = [], []
        for label, folder in enumerate(_class_folders(path / split)):
            files = _image_files(folder)
            if not files:  # a class without images is a class missing from the run
                raise DataError(f"{folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
            for file in files:
                with Image.open(io.BytesIO(file.read_bytes())) as im:
                    images.append(np.asarray(im.convert("RGB"), dtype=np.uint8))
                labels.append(label)
        x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
        if x.shape[1:] != (3, 32, 32):
            raise ValueError(f"{path / split}: images must be 32x32 RGB, got {tuple(x.shape[1:])}")
        return x, torch.tensor(labels, dtype=torch.int64)

    return read("train") + read("test")


def default_cache_dir() -> Path:
    env = os.environ.get(ENV_CACHE)
    return Path(env) if env else Path.home() / ".cache" / "explicit-sparsity"


CACHE_FORMAT = 2  # 2: labels from CLASSES; bump whenever decoding or labelling changes


def _decoder() -> str:
    """The versions of what turns files into tensors: a new decoder may give other pixels."""
    import PIL

    return f"format {CACHE_FORMAT}|Pillow {PIL.__version__}|numpy {np.__version__}|torch {torch.__version__}"


def _fingerprint(path: Path, kind: str) -> str:
    """Changes when the data directory's files (names, sizes, times), the class list or the decoder change."""
    h = hashlib.sha256(f"{path}|{kind}|{','.join(CLASSES)}|{_decoder()}".encode())
    roots = [_batches_dir(path)] if kind == "torchvision" else [path / "train", path / "test"]
    for root in roots:
        for entry in sorted(root.rglob("*")):
            if entry.is_file():
                st = entry.stat()
                h.update(f"{entry.relative_to(root)}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


@dataclass
class CIFAR10:
    """All of CIFAR-10 as uint8 images (N, 3, 32, 32) and int64 labels (N,)."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor


def load_cifar10(data_dir=None, cache_dir=None) -> CIFAR10:
    """Decode CIFAR-10 once (either layout) and cache it; later calls read the cache."""
    path = resolve_data_dir(data_dir)
    kind = layout(path)
    cache = Path(cache_dir).expanduser().resolve() if cache_dir else default_cache_dir().resolve()
    if cache == path or path in cache.parents:
        raise ValueError(f"the cache directory {cache} must not be inside the data directory {path}")
    file = cache / f"cifar10-{kind}-{_fingerprint(path, kind)}.pt"
    if file.is_file():
        try:
            return _read_cache(file)
        except Exception as err:  # torch.load's errors for a damaged file vary (EOFError, RuntimeError...)
            warnings.warn(f"{file}: unusable decode cache ({type(err).__name__}: {err}); decoding again", stacklevel=2)
    reader = _read_torchvision if kind == "torchvision" else _read_imagefolder
    data = CIFAR10(*reader(path))
    cache.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(f".{file.name}.tmp{os.getpid()}")
    torch.save(vars(data), tmp)
    os.replace(tmp, file)  # atomic: a parallel run never reads half a file
    return data


def _read_cache(file: Path) -> CIFAR10:
    """The cached tensors, checked to be what load_cifar10 writes; ValueError otherwise."""
    saved = torch.load(file, weights_only=True)
    fields = [f.name for f in dataclasses.fields(CIFAR10)]
    if not isinstance(saved, dict) or sorted(saved) != sorted(fields):
        raise ValueError(f"holds {type(saved).__name__} {sorted(saved) if isinstance(saved, dict) else ''}")
    data = CIFAR10(**saved)
    for split in ("train", "test"):
        images, labels = getattr(data, f"{split}_images"), getattr(data, f"{split}_labels")
        if images.dtype != torch.uint8 or images.shape[1:] != (3, 32, 32) or images.shape[0] < 1:
            raise ValueError(f"{split} images are {images.dtype} {tuple(images.shape)}, not uint8 (N, 3, 32, 32)")
        if labels.dtype != torch.int64 or labels.shape != images.shape[:1]:
            raise ValueError(f"{split} labels are {labels.dtype} {tuple(labels.shape)} for {images.shape[0]} images")
        if labels.min() < 0 or labels.max() >= len(CLASSES):
            raise ValueError(f"{split} labels outside 0..{len(CLASSES) - 1}")
    return data


# ---------------------------------------------------------------------------
# Split, normalisation, batches.


def split_indices(num_images: int, val_fraction: float, seed: int):
    """(train, val) index tensors: a seeded permutation, the last `val_fraction` held out
    (val_fraction 0: all images train, val is empty)."""
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    order = torch.randperm(num_images, generator=torch.Generator().manual_seed(seed))
    num_val = round(num_images * val_fraction)
    return order[: num_images - num_val], order[num_images - num_val :]


@dataclass
class Split:
    """Normalised float images and labels of one split, on one device."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self):
        return len(self.labels)


@dataclass
class Splits:
    train: Split
    val: Split
    test: Split
    mean: tuple
    std: tuple


def _take(count, available, name):
    if count is None or count == 0:
        return available
    if count < 0 or count > available:
        raise ValueError(f"{name} must be in 1..{available} (the images of that split; 0 for all), got {count}")
    return count


def count_images(path: Path) -> tuple[int, int]:
    """(training, test) image counts of a data directory, without decoding an image."""
    if layout(path) == "torchvision":
        def count(names):
            total = 0
            for name in names:
                with open(_batches_dir(path) / name, "rb") as f:
                    total += len(pickle.load(f, encoding="latin1")["labels"])
            return total

        return count([f"data_batch_{i}" for i in range(1, 6)]), count(["test_batch"])
    train, test = (sum(len(_image_files(f)) for f in _class_folders(path / split)) for split in ("train", "test"))
    return train, test


def check_sizes(path: Path, val_fraction: float, train_size=None, val_size=None, test_size=None) -> None:
    """ValueError, naming the available count, for a subset larger than its split of `path`:
    what `prepare` would find only after decoding, found from the directory alone."""
    num_train, num_test = count_images(path)
    num_val = round(num_train * val_fraction)
    _take(train_size, num_train - num_val, "train_size")
    _take(val_size, num_val, "val_size")
    _take(test_size, num_test, "test_size")


def prepare(
    data: CIFAR10,
    seed: int = 0,
    val_fraction: float = 0.2,
    train_size: int | None = None,
    val_size: int | None = None,
    test_size: int | None = None,
    device="cpu",
) -> Splits:
    """The paper's split of `data`, optionally subsampled, normalised, on `device`.

    Sizes of None or 0 take the whole split. Subsets are random (the folders are
    sorted by class): training and validation subsets follow the run's seed, the
    test subset is the same for every seed.
    """
    train_idx, val_idx = split_indices(len(data.train_labels), val_fraction, seed)
    train_idx = train_idx[: _take(train_size, len(train_idx), "train_size")]
    val_idx = val_idx[: _take(val_size, len(val_idx), "val_size")]
    test_order = torch.randperm(len(data.test_labels), generator=torch.Generator().manual_seed(TEST_SUBSET_SEED))
    test_idx = test_order[: _take(test_size, len(test_order), "test_size")].sort().values

    train = data.train_images[train_idx].float().div_(255)
    mean = train.mean(dim=(0, 2, 3))
    std = train.std(dim=(0, 2, 3))

    def make(images, labels):
        x = images.float().div_(255) if images.dtype == torch.uint8 else images
        x = (x - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)
        return Split(x.to(device), labels.to(device))

    return Splits(
        train=make(train, data.train_labels[train_idx]),
        val=make(data.train_images[val_idx], data.train_labels[val_idx]),
        test=make(data.test_images[test_idx], data.test_labels[test_idx]),
        mean=tuple(mean.tolist()),
        std=tuple(std.tolist()),
    )


def batches(split: Split, batch_size: int, generator: torch.Generator | None = None):
    """Yield (images, labels) batches; shuffled when a generator is given.

    The last, smaller batch is kept (every image counts once per epoch).
    """
    n = len(split)
    if generator is None:
        order = None
    else:
        order = torch.randperm(n, generator=generator).to(split.labels.device)
    for start in range(0, n, batch_size):
        if order is None:
            yield split.images[start : start + batch_size], split.labels[start : start + batch_size]
        else:
            idx = order[start : start + batch_size]
            yield split.images[idx], split.labels[idx]


def num_batches(split: Split, batch_size: int) -> int:
    return -(-len(split) // batch_size)


AUGMENTATIONS = ("none", "crop_flip")
CROP_PAD = 4  # pixels of zero padding around the image before the random crop


def augment(images: torch.Tensor, kind: str, generator: torch.Generator, pad: int = CROP_PAD) -> torch.Tensor:
    """A training batch augmented by `kind` (module docstring); "none" returns it unchanged and
    draws nothing from `generator`, so runs without augmentation keep their numbers."""
    if kind == "none":
        return images
    if kind != "crop_flip":
        raise ValueError(f"unknown augment {kind!r}; valid: {', '.join(AUGMENTATIONS)}")
    b, c, h, w = images.shape
    corner = torch.randint(0, 2 * pad + 1, (b, 2), generator=generator)  # generator on the CPU
    flip = torch.randint(0, 2, (b,), generator=generator).bool()
    cols = torch.arange(w).expand(b, w)
    cols = torch.where(flip[:, None], cols.flip(1), cols) + corner[:, 1:]
    rows = torch.arange(h) + corner[:, :1]
    rows, cols = rows.to(images.device), cols.to(images.device)
    padded = F.pad(images, (pad, pad, pad, pad))
    return padded[
        torch.arange(b, device=images.device)[:, None, None, None],
        torch.arange(c, device=images.device)[None, :, None, None],
        rows[:, None, :, None],
        cols[:, None, None, :],
    ]
