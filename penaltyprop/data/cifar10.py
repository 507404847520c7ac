"""CIFAR-10, the paper's data (Krizhevsky 2009), read from the official *binary* release.

``cifar-10-binary.tar.gz`` extracts to ``cifar-10-batches-bin/``: five training files
``data_batch_1.bin .. data_batch_5.bin`` and ``test_batch.bin``, each 10,000 records of
1 label byte followed by 3,072 pixel bytes (1024 red, 1024 green, 1024 blue, each 32 x 32
row-major). So a record's pixels are already a flattened (3, 32, 32) image. Nothing here
unpickles anything: the pickled Python release can run code when loaded.

As in the paper (Section 5): the last 5,000 training images are the validation set, the
first 45,000 the training set, and pixels are divided by the largest pixel value of the
training images (as the authors' code does), which puts them in [0, 1].
"""
from __future__ import annotations

from pathlib import Path

from ..backend import numpy as np
from .base import (
    DATA_DIR_ENV,
    DataError,
    MissingDataError,
    check_labels,
    check_split,
    data_root,
    root_name,
    split_scale_subset,
)
from .fetch import cache_lock, extract_folder, fetch, remove_leftovers

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
SHA256 = "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"  # 170,052,171 bytes
ARCHIVE = "cifar-10-binary.tar.gz"
FOLDER = "cifar-10-batches-bin"
TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_FILE = "test_batch.bin"

IMAGE_SHAPE = (3, 32, 32)
N_CLASSES = 10
RECORD_BYTES = 1 + 3 * 32 * 32  # label byte, then the pixels channel-major
RECORDS_PER_FILE = 10_000  # so every file has 30,730,000 bytes
N_VALIDATION = 5_000  # the last 5,000 training images (paper, Section 5)


def load_cifar10(data_dir=None, subset=None, dtype="float32", download=True):
    """Load CIFAR-10 with the paper's split: 45,000 train, 5,000 validation, 10,000 test.

    Parameters
    ----------
    data_dir : path-like, optional
        The extracted ``cifar-10-batches-bin/`` folder or the folder holding it. Without it,
        :func:`penaltyprop.data.cache_dir` (``$PENALTYPROP_DATA_DIR`` if set).
    subset : int, optional
        Keep the first ``subset`` training images, and proportionally fewer validation and
        test images (``split_scale_subset`` in ``penaltyprop/data/base.py``).
    dtype : str
        A floating type.
    download : bool
        Download and extract the official archive (170 MB, sha256-checked) when no folder
        is found.

    Returns
    -------
    Dataset
        X of shape (N, 3072), pixels in [0, 1]; image_shape (3, 32, 32).

    Raises
    ------
    DataError
        No data and no download, a failed download, a corrupted archive, a missing or
        wrong-sized file, or a label outside 0..9.
    """
    folder = locate(data_root(data_dir), download, root_name(data_dir))
    check_folder(folder)
    train = read_batches([folder / name for name in TRAIN_FILES])  # (50000, 3072), (50000,)
    test = read_batches([folder / TEST_FILE])  # (10000, 3072), (10000,)
    check_split("cifar10", len(train[1]), len(test[1]), N_VALIDATION, str(folder))
    scale = int(train[0][: len(train[1]) - N_VALIDATION].max())  # max pixel of the train part
    if scale == 0:
        raise DataError(f"every training pixel in {folder} is 0; the files are corrupted")
    return split_scale_subset("cifar10", train, test, n_val=N_VALIDATION, scale=scale,
                              n_classes=N_CLASSES, image_shape=IMAGE_SHAPE, dtype=dtype,
                              subset=subset, source=str(folder))


def locate(root: Path, download: bool, name: str = "data_dir") -> Path:
    """The ``cifar-10-batches-bin/`` folder: ``root`` itself, ``root/cifar-10-batches-bin``,
    or, when neither exists and ``download`` is true, a fresh download into ``root``.

    The download and extraction hold ``root``'s cache lock
    (:func:`penaltyprop.data.fetch.cache_lock`); ``name`` says where ``root`` came from.

    Raises
    ------
    DataError
        If there is no folder and ``download`` is false, or the download fails.
    """
    found = _find(root)
    if found is not None:
        remove_leftovers(root)  # of an extraction killed before another one succeeded
        return found
    where = (f"put the extracted {FOLDER}/ folder in {root}, or pass data_dir= or set "
             f"{DATA_DIR_ENV} to the folder holding it")
    if not download:
        raise MissingDataError(f"CIFAR-10 not found in {root}: {where}, or use download=True to "
                        f"fetch {URL}")
    with cache_lock(root, name):
        found = _find(root)  # another process may have extracted it while we waited
        if found is not None:
            return found
        archive = fetch([URL], f"sha256:{SHA256}", ARCHIVE, root, hint=f"; instead {where}")
        try:
            return extract_folder(archive, FOLDER, root, check_folder)
        except DataError:
            archive.unlink()  # its hash matched but it cannot be used: do not keep it
            raise


def _find(root: Path):
    """``root`` or ``root/cifar-10-batches-bin`` if it is the batches folder, else None."""
    for folder in (root, root / FOLDER):
        if folder.is_dir() and (folder.name == FOLDER or (folder / TRAIN_FILES[0]).exists()):
            return folder
    return None


def check_folder(folder: Path) -> None:
    """Check that all six batch files exist with exactly the official size.

    Raises
    ------
    DataError
        Naming the first missing or wrong-sized file.
    """
    size = RECORDS_PER_FILE * RECORD_BYTES
    for name in TRAIN_FILES + (TEST_FILE,):
        path = folder / name
        if not path.is_file():
            raise DataError(f"{path} is missing; extract all of {ARCHIVE} into "
                            f"{folder.parent} (or delete {folder} to download it again)")
        if path.stat().st_size != size:
            raise DataError(f"{path} has {path.stat().st_size} bytes, expected {size} "
                            f"({RECORDS_PER_FILE} records of {RECORD_BYTES}); extract it "
                            f"again from {ARCHIVE}")


def read_batches(paths):
    """Read binary CIFAR-10 batch files and stack their records.

    Parameters
    ----------
    paths : list of path-like
        Files of records: 1 label byte, then 3072 pixel bytes in (C, H, W) order.

    Returns
    -------
    images : uint8 array, shape (N, 3072)
        One flattened (3, 32, 32) image per row.
    labels : uint8 array, shape (N,)
        In 0..9.

    Raises
    ------
    DataError
        If a file's size is not a whole number of records, or a label exceeds 9.
    """
    images, labels = [], []
    for path in paths:
        raw = np.fromfile(path, dtype=np.uint8)
        if raw.size % RECORD_BYTES:
            raise DataError(f"{path} has {raw.size} bytes, not a whole number of "
                            f"{RECORD_BYTES}-byte records; extract it again from {ARCHIVE}")
        records = raw.reshape(-1, RECORD_BYTES)  # (n, 1 + 3072)
        check_labels(records[:, 0], N_CLASSES, path)
        labels.append(records[:, 0])
        images.append(records[:, 1:])
    return np.concatenate(images), np.concatenate(labels)
