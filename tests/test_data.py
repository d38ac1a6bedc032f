"""Both CIFAR-10 layouts on tiny trees made here, the split, the cache and the errors."""

import pickle
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from lib import data
from lib.data import CLASSES


def make_imagefolder(root, per_class=(3, 2)):
    rng = np.random.default_rng(0)
    for split, count in zip(("train", "test"), per_class, strict=True):
        for name in CLASSES:
            (root / split / name).mkdir(parents=True)
            for k in range(count):
                pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / name / f"{k:04d}.png")
    return root


def make_torchvision(root, per_batch=4):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        entry = {"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8), "labels": list(range(per_batch))}
        with open(folder / name, "wb") as f:
            pickle.dump(entry, f)
    return root


def test_imagefolder_layout_decodes_and_labels_by_sorted_class(tmp_path):
    root = make_imagefolder(tmp_path / "cifar")
    assert data.layout(root) == "imagefolder"
    d = data.load_cifar10(root, tmp_path / "cache")
    assert d.train_images.shape == (30, 3, 32, 32) and d.train_images.dtype == torch.uint8
    assert d.test_images.shape == (20, 3, 32, 32)
    assert d.train_labels.tolist() == [c for c in range(10) for _ in range(3)]
    # pixel (row 0, col 0) of airplane/0001.png, channel-first
    pixels = np.asarray(Image.open(root / "train" / "airplane" / "0001.png"))
    assert d.train_images[1, :, 0, 0].tolist() == pixels[0, 0].tolist()


def test_labels_come_from_the_class_name_not_the_folders_a_split_has(tmp_path):
    root = make_imagefolder(tmp_path / "cifar")
    (root / "train" / ".ipynb_checkpoints").mkdir()  # hidden folders, sorted first, are ignored
    (root / "test" / ".DS_Store").write_bytes(b"\0")
    (root / "train" / "cat" / "._0000.png").write_bytes(b"not an image")  # macOS resource fork
    d = data.load_cifar10(root, tmp_path / "cache")
    assert d.train_labels.tolist() == [c for c in range(10) for _ in range(3)]
    assert d.test_labels.tolist() == [c for c in range(10) for _ in range(2)]
    # truck is CLASSES[9]: its image keeps label 9 and its pixels
    pixels = np.asarray(Image.open(root / "test" / "truck" / "0001.png"))
    assert d.test_labels[19] == 9 and d.test_images[19, :, 0, 0].tolist() == pixels[0, 0].tolist()


@pytest.mark.parametrize(
    "defect, message",
    [
        # before: train labelled 0-8 against test 0-9, and the run completed
        (lambda root: shutil.rmtree(root / "train" / "deer"), r"cifar/train: missing class folder\(s\) deer\."),
        # before: 'bird' got label 3, and 'zebra' label 10 (IndexError in cross_entropy)
        (lambda root: (root / "test" / "Untitled Folder").mkdir(), r"test: unknown folder\(s\) Untitled Folder\."),
        (lambda root: [shutil.rmtree(root / s / "cat") for s in ("train", "test")], r"train: missing .* cat"),
    ],
)
def test_defective_class_folders_are_refused_naming_them(tmp_path, defect, message):
    root = make_imagefolder(tmp_path / "cifar")
    defect(root)
    with pytest.raises(data.DataError, match=message):
        data.resolve_data_dir(root)  # before any decoding: run() calls this before its first record
    with pytest.raises(data.DataError, match=message):
        data.load_cifar10(root, tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_a_class_folder_without_images_is_refused(tmp_path):
    root = make_imagefolder(tmp_path / "cifar")
    for file in (root / "train" / "frog").iterdir():
        file.unlink()
    with pytest.raises(data.DataError, match=r"train/frog holds no images"):
        data.load_cifar10(root, tmp_path / "cache")


def test_torchvision_layout_reads_channel_major_rows(tmp_path):
    root = make_torchvision(tmp_path / "tv")
    assert data.layout(root) == "torchvision"
    assert data.layout(root / "cifar-10-batches-py") == "torchvision"
    d = data.load_cifar10(root, tmp_path / "cache")
    assert d.train_images.shape == (20, 3, 32, 32) and d.test_images.shape == (4, 3, 32, 32)
    with open(root / "cifar-10-batches-py" / "data_batch_2", "rb") as f:
        row = pickle.load(f)["data"][1]
    assert d.train_images[5].flatten().tolist() == row.tolist()  # batch 2, image 1
    assert d.train_labels[:5].tolist() == [0, 1, 2, 3, 0]


def test_cache_is_written_once_and_reused(tmp_path):
    root = make_imagefolder(tmp_path / "cifar")
    data.load_cifar10(root, tmp_path / "cache")
    files = list((tmp_path / "cache").glob("*.pt"))
    assert len(files) == 1
    (root / "train" / "airplane" / "0000.png").unlink()  # data changed: a new cache entry
    assert len(data.load_cifar10(root, tmp_path / "cache").train_labels) == 29


@pytest.mark.parametrize("damage", [lambda b: b[: len(b) // 2], lambda b: b""], ids=["truncated", "empty"])
def test_damaged_cache_is_rebuilt_with_a_warning(tmp_path, damage):
    root = make_imagefolder(tmp_path / "cifar")
    fresh = data.load_cifar10(root, tmp_path / "cache")
    (file,) = (tmp_path / "cache").glob("*.pt")
    file.write_bytes(damage(file.read_bytes()))  # before: a bare EOFError in every later run
    with pytest.warns(UserWarning, match=f"{file.name}: unusable decode cache"):
        again = data.load_cifar10(root, tmp_path / "cache")
    assert vars(again).keys() == vars(fresh).keys()
    assert all(torch.equal(vars(again)[k], vars(fresh)[k]) for k in vars(fresh))
    assert [f.name for f in (tmp_path / "cache").iterdir()] == [file.name]  # rewritten in place, no tmp left
    assert torch.equal(data.load_cifar10(root, tmp_path / "cache").test_labels, fresh.test_labels)


def test_cache_with_wrong_contents_is_rebuilt(tmp_path):
    root = make_imagefolder(tmp_path / "cifar")
    fresh = data.load_cifar10(root, tmp_path / "cache")
    (file,) = (tmp_path / "cache").glob("*.pt")
    torch.save({**vars(fresh), "train_labels": fresh.train_labels + 10}, file)
    with pytest.warns(UserWarning, match="train labels outside 0..9"):
        assert torch.equal(data.load_cifar10(root, tmp_path / "cache").train_labels, fresh.train_labels)


def test_cache_key_covers_the_class_list_and_the_decoder(tmp_path, monkeypatch):
    root = make_imagefolder(tmp_path / "cifar")
    first = data.load_cifar10(root, tmp_path / "cache")
    monkeypatch.setattr(data, "CLASSES", data.CLASSES[::-1])  # another mapping: other labels, not the cached
    second = data.load_cifar10(root, tmp_path / "cache")
    assert torch.equal(second.train_images[27:], first.train_images[:3])  # the airplanes, now label 9
    assert second.train_labels[27:].tolist() == [9, 9, 9]
    monkeypatch.setattr(data, "CACHE_FORMAT", data.CACHE_FORMAT + 1)
    data.load_cifar10(root, tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 3


def test_images_are_counted_without_decoding(tmp_path):
    assert data.count_images(make_imagefolder(tmp_path / "if", (3, 2))) == (30, 20)
    assert data.count_images(make_torchvision(tmp_path / "tv", 4)) == (20, 4)
    with pytest.raises(ValueError, match=r"train_size must be in 1\.\.16 .*got 17"):  # 20 - round(20 * 0.2)
        data.check_sizes(tmp_path / "tv", 0.2, train_size=17)
    data.check_sizes(tmp_path / "tv", 0.2, train_size=16, val_size=4, test_size=4)


def test_env_variable_is_used(tmp_path, monkeypatch):
    root = make_torchvision(tmp_path / "tv")
    monkeypatch.setenv("CIFAR10_DIR", str(root))
    assert data.resolve_data_dir() == root.resolve()


def test_missing_data_says_where_and_how(tmp_path, monkeypatch):
    monkeypatch.delenv("CIFAR10_DIR", raising=False)
    with pytest.raises(data.DataNotFoundError, match="CIFAR10_DIR"):
        data.load_cifar10()
    with pytest.raises(data.DataNotFoundError, match=str(tmp_path)):
        data.load_cifar10(tmp_path, tmp_path / "cache")


def test_cache_inside_data_dir_is_refused(tmp_path):
    root = make_torchvision(tmp_path / "tv")
    with pytest.raises(ValueError, match="must not be inside"):
        data.load_cifar10(root, root / "cache")


def test_split_is_seeded_disjoint_and_80_20():
    train, val = data.split_indices(50_000, 0.2, seed=3)
    assert len(train) == 40_000 and len(val) == 10_000
    assert len(set(train.tolist()) | set(val.tolist())) == 50_000
    assert torch.equal(train, data.split_indices(50_000, 0.2, seed=3)[0])
    assert not torch.equal(train, data.split_indices(50_000, 0.2, seed=4)[0])


def test_prepare_normalises_with_training_statistics(tmp_path):
    d = data.load_cifar10(make_imagefolder(tmp_path / "cifar", (10, 4)), tmp_path / "cache")
    s = data.prepare(d, seed=0, train_size=50, val_size=10, test_size=20)
    assert (len(s.train), len(s.val), len(s.test)) == (50, 10, 20)
    torch.testing.assert_close(s.train.images.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(s.train.images.std(dim=(0, 2, 3)), torch.ones(3), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="train_size"):
        data.prepare(d, train_size=81)


def test_batches_cover_every_image_once(tmp_path):
    split = data.Split(torch.arange(10.0).view(10, 1), torch.arange(10))
    seen = [y for _, ys in data.batches(split, 3, torch.Generator().manual_seed(0)) for y in ys.tolist()]
    assert sorted(seen) == list(range(10)) and seen != list(range(10))
    assert [len(y) for _, y in data.batches(split, 3)] == [3, 3, 3, 1]
    assert data.num_batches(split, 3) == 4


def test_real_cifar10_counts_and_labels(cifar10_dir, cache_dir):
    assert data.count_images(data.resolve_data_dir(cifar10_dir)) == (50_000, 10_000)
    data.check_sizes(data.resolve_data_dir(cifar10_dir), 0.2, 40_000, 10_000, 10_000)  # all of each split fits
    d = data.load_cifar10(cifar10_dir, cache_dir)
    assert d.train_images.shape == (50_000, 3, 32, 32) and d.test_images.shape == (10_000, 3, 32, 32)
    assert torch.bincount(d.train_labels).tolist() == [5000] * 10
    assert torch.bincount(d.test_labels).tolist() == [1000] * 10


def _crop_flip_oracle(images, generator, pad):
    """crop_flip written out image by image, pixel by pixel, from the documented draw order."""
    b, c, h, w = images.shape
    corner = torch.randint(0, 2 * pad + 1, (b, 2), generator=generator)
    flip = torch.randint(0, 2, (b,), generator=generator)
    out = torch.empty_like(images)
    for n in range(b):
        for ch in range(c):
            for i in range(h):
                for j in range(w):
                    jj = w - 1 - j if flip[n] else j
                    y, x = int(corner[n, 0]) + i - pad, int(corner[n, 1]) + jj - pad  # in the unpadded image
                    out[n, ch, i, j] = images[n, ch, y, x] if 0 <= y < h and 0 <= x < w else 0.0
    return out


def test_crop_flip_matches_an_explicit_per_pixel_oracle():
    images = torch.arange(5 * 2 * 3 * 4, dtype=torch.float32).view(5, 2, 3, 4) + 1  # no pixel is 0
    for pad in (1, 2):
        got = data.augment(images, "crop_flip", torch.Generator().manual_seed(7), pad=pad)
        want = _crop_flip_oracle(images, torch.Generator().manual_seed(7), pad)
        assert torch.equal(got, want)


def test_crop_flip_gives_exactly_the_hand_listed_crops_of_a_2x2_image():
    # [[1, 2], [3, 4]] padded by 1 has 9 crop corners, each flipped or not: 18 crops by hand
    image = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 1, 2, 2)
    crops = {  # (dy, dx) -> the unflipped crop
        (0, 0): ((0, 0), (0, 1)), (0, 1): ((0, 0), (1, 2)), (0, 2): ((0, 0), (2, 0)),
        (1, 0): ((0, 1), (0, 3)), (1, 1): ((1, 2), (3, 4)), (1, 2): ((2, 0), (4, 0)),
        (2, 0): ((0, 3), (0, 0)), (2, 1): ((3, 4), (0, 0)), (2, 2): ((4, 0), (0, 0)),
    }
    allowed = {c for crop in crops.values() for c in (crop, tuple(row[::-1] for row in crop))}
    assert len(allowed) == 18
    got = data.augment(image.expand(400, 1, 2, 2), "crop_flip", torch.Generator().manual_seed(0), pad=1)
    seen = {tuple(map(tuple, g[0].int().tolist())) for g in got}
    assert seen == allowed


def test_augment_none_draws_nothing_and_unknown_is_refused():
    images, generator = torch.rand(3, 3, 8, 8), torch.Generator().manual_seed(1)
    assert data.augment(images, "none", generator) is images
    assert torch.equal(generator.get_state(), torch.Generator().manual_seed(1).get_state())
    with pytest.raises(ValueError, match="unknown augment 'rotate'"):
        data.augment(images, "rotate", generator)
