"""UCI "Optical Recognition of Handwritten Digits": 1,797 images of 8 x 8 pixels, shipped.

The offline default. The file ``penaltyprop/_data/digits.csv.gz`` (CC BY 4.0, E. Alpaydin
and C. Kaynak, UCI Machine Learning Repository; the copy scikit-learn ships) has one image
per line: 64 pixel counts in 0..16, row-major, then the label 0..9. Its sha256 is checked on
every load. Pixels are divided by 16, the largest value the format allows.

The data set comes without a split. Ours is fixed: ``numpy.random.default_rng(0)`` permutes
the 1,797 rows; the first 1,197 are the training set, the next 300 the validation set, the
last 300 the test set.
"""
from __future__ import annotations

import gzip
import hashlib
import io
from pathlib import Path

from ..backend import host_rng
from ..backend import numpy as np
from .base import DataError, split_scale_subset

DIGITS_FILE = Path(__file__).resolve().parents[1] / "_data" / "digits.csv.gz"
SHA256 = "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22"

IMAGE_SHAPE = (1, 8, 8)
N_CLASSES = 10
MAX_PIXEL = 16
SPLIT_SEED = 0
N_TRAIN, N_VALIDATION, N_TEST = 1197, 300, 300


def load_digits(subset=None, dtype="float32"):
    """Load the shipped digits with the fixed 1,197 / 300 / 300 split.

    Parameters
    ----------
    subset : int, optional
        Keep the first ``subset`` training images, and proportionally fewer validation and
        test images.
    dtype : str
        A floating type.

    Returns
    -------
    Dataset
        X of shape (N, 64), pixels in [0, 1]; image_shape (1, 8, 8).

    Raises
    ------
    DataError
        If the shipped file is missing or its checksum does not match.
    """
    table = read_digits(DIGITS_FILE)  # (1797, 65): 64 pixels, then the label
    images, labels = table[:, :-1].astype(np.uint8), table[:, -1]
    order = host_rng(SPLIT_SEED).permutation(len(labels))  # (1797,)
    train, test = order[: N_TRAIN + N_VALIDATION], order[N_TRAIN + N_VALIDATION:]
    return split_scale_subset("digits", (images[train], labels[train]),
                              (images[test], labels[test]), n_val=N_VALIDATION,
                              scale=MAX_PIXEL, n_classes=N_CLASSES, image_shape=IMAGE_SHAPE,
                              dtype=dtype, subset=subset)


def read_digits(path):
    """Read and verify the digits file.

    Parameters
    ----------
    path : path-like
        ``digits.csv.gz``, checked against :data:`SHA256`.

    Returns
    -------
    int64 array, shape (1797, 65)
        64 pixels in 0..16, then the label.

    Raises
    ------
    DataError
        If the file is missing or its sha256 differs.
    """
    try:
        raw = Path(path).read_bytes()
    except OSError as err:
        raise DataError(f"{path} is missing ({type(err).__name__}); reinstall penaltyprop "
                        f"or restore the file with git") from err
    if hashlib.sha256(raw).hexdigest() != SHA256:
        raise DataError(f"{path} is corrupted (its sha256 is not {SHA256}); reinstall "
                        f"penaltyprop or restore the file with git")
    return np.loadtxt(io.BytesIO(gzip.decompress(raw)), delimiter=",", dtype=np.int64)
