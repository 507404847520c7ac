"""MNIST (LeCun, Cortes and Burges), read from its four gzipped IDX files.

An IDX file is a 4-byte magic number (two zero bytes, a type code, 0x08 for unsigned bytes,
and the number of dimensions), then each dimension as a big-endian uint32, then the data,
row-major. The files are downloaded from the first mirror that answers, each checked against
its md5 sum, or read from a folder that holds them. A folder must hold the full 60,000 training
and 10,000 test images (any other count is refused: a short folder would change the split). The
last 5,000 training images are the validation set; pixels are divided by 255.
"""
from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

from ..backend import numpy as np
from .base import (
    DATA_DIR_ENV,
    DataError,
    MissingDataError,
    check_labels,
    data_root,
    root_name,
    split_scale_subset,
)
from .fetch import cache_lock, fetch, remove_leftovers

MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
#: file name -> md5 of the gzipped file, as published with the data set
MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
FOLDER = "mnist"

IMAGE_SHAPE = (1, 28, 28)
N_CLASSES = 10
N_TRAIN_FILE, N_TEST_FILE = 60_000, 10_000  # images in the training and test files
N_VALIDATION = 5_000  # the last 5,000 training images, as for CIFAR-10
MAX_PIXEL = 255


def load_mnist(data_dir=None, subset=None, dtype="float32", download=True):
    """Load MNIST: 55,000 train, 5,000 validation (the last training images), 10,000 test.

    Parameters
    ----------
    data_dir : path-like, optional
        A folder holding the four ``*-ubyte.gz`` files, or the folder holding ``mnist/``
        with them. Without it, :func:`penaltyprop.data.cache_dir`.
    subset : int, optional
        Keep the first ``subset`` training images, and proportionally fewer validation and
        test images.
    dtype : str
        A floating type.
    download : bool
        Download missing files (md5-checked) from the mirrors in
        ``penaltyprop/data/mnist.py``, tried in order.

    Returns
    -------
    Dataset
        X of shape (N, 784), pixels in [0, 1]; image_shape (1, 28, 28).

    Raises
    ------
    DataError
        A missing file without download, a failed download, a file that is not valid
        gzipped IDX, inconsistent sizes, a count other than 60,000 / 10,000 images, or a
        label outside 0..9.
    """
    root = data_root(data_dir)
    folder = root if (root / next(iter(MD5))).exists() else root / FOLDER
    missing = [name for name in MD5 if not (folder / name).is_file()]
    if missing and not download:
        raise MissingDataError(f"{folder / missing[0]} is missing: {_where(folder)}, or use "
                        f"download=True to fetch it from {MIRRORS[0]}")
    if missing:
        with cache_lock(folder, root_name(data_dir)):  # one download into a cache at a time
            for name in missing:
                fetch([mirror + name for mirror in MIRRORS], f"md5:{MD5[name]}", name, folder,
                      hint=f"; instead {_where(folder)}")
    else:
        remove_leftovers(folder)  # of a download killed before another one succeeded
    path = {name: folder / name for name in MD5}
    train = _read_pair(path["train-images-idx3-ubyte.gz"], path["train-labels-idx1-ubyte.gz"],
                       N_TRAIN_FILE)
    test = _read_pair(path["t10k-images-idx3-ubyte.gz"], path["t10k-labels-idx1-ubyte.gz"],
                      N_TEST_FILE)
    return split_scale_subset("mnist", train, test, n_val=N_VALIDATION, scale=MAX_PIXEL,
                              n_classes=N_CLASSES, image_shape=IMAGE_SHAPE, dtype=dtype,
                              subset=subset, source=str(folder))


def _where(folder: Path) -> str:
    """What a user can do to provide the files."""
    return (f"put the four MNIST *-ubyte.gz files in {folder}, or pass data_dir= or set "
            f"{DATA_DIR_ENV} to a folder holding them")


def _read_pair(images_path, labels_path, n_images):
    """Images (N, 784) uint8 and labels (N,) uint8 from an IDX pair, checked for consistency.

    ``n_images``: the number of images the file must hold (60,000 or 10,000).
    """
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE[1:]:
        raise DataError(f"{images_path} holds images of shape {images.shape[1:]}, expected "
                        f"28 x 28; it is not an MNIST image file")
    if len(images) != n_images:
        raise DataError(f"{images_path} holds {len(images)} images, MNIST has {n_images}; "
                        f"the folder is incomplete, replace the file")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(f"{labels_path} holds {labels.shape} labels for {len(images)} images "
                        f"in {images_path}; the files do not belong together")
    check_labels(labels, N_CLASSES, labels_path)
    return images.reshape(len(images), -1), labels


def read_idx(path):
    """Read a gzipped IDX file of unsigned bytes.

    Parameters
    ----------
    path : path-like
        The file.

    Returns
    -------
    uint8 array
        Of the shape the header announces, e.g. (N, 28, 28) or (N,). Read-only.

    Raises
    ------
    DataError
        If the file is not gzip, its magic number is not that of unsigned-byte IDX, or its
        length differs from the one its header announces (truncated or padded).
    """
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"{path} is not a readable gzip file ({type(err).__name__}); "
                        f"delete it to download it again") from err
    if len(raw) < 4 or raw[:3] != b"\x00\x00\x08":
        raise DataError(f"{path} is not an IDX file of unsigned bytes "
                        f"(magic number {raw[:4].hex() or 'missing'})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path} ends inside its header; it is truncated, delete it")
    shape = struct.unpack(f">{ndim}I", raw[4:header])  # big-endian uint32 sizes
    expected = header + int(np.prod(shape, dtype=np.int64))
    if len(raw) != expected:
        raise DataError(f"{path} holds {len(raw)} bytes once decompressed, its header "
                        f"announces {expected} for shape {shape}; it is truncated or corrupted")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)
