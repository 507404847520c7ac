"""Data sets: the shipped UCI digits (offline default), CIFAR-10 (the paper's) and MNIST.

>>> from penaltyprop.data import load_dataset, batch_last
>>> ds = load_dataset("digits")           # X_train (1197, 64), samples-first, in [0, 1]
>>> X = batch_last(ds.X_train)            # (64, 1197): a sample per column, as in the paper

Every data set is a :class:`Dataset` of host arrays, samples-first. :func:`batch_last` is the
one place where they turn into the paper's layout. CIFAR-10 and MNIST download on first use
into :func:`cache_dir`, with checksums, or load from a folder that already holds them
(``data_dir=`` or ``$PENALTYPROP_DATA_DIR``). Every failure is a one-line :class:`DataError`.
:func:`fingerprint` gives a data set's identity for checkpoints (sizes and a hash of all of it).

Modules: ``base`` (Dataset, split rule, batch_last), ``fetch`` (download, safe extraction),
and one module per data set (``digits``, ``cifar10``, ``mnist``) that parses its format;
``mnist_csv`` reads part of MNIST from a CSV file with its own ``load_mnist_csv``
(:func:`load_dataset` does not name it).
"""
from __future__ import annotations

from .base import (
    DATA_DIR_ENV,
    DataError,
    Dataset,
    MissingDataError,
    batch_last,
    cache_dir,
    fingerprint,
    same_data,
)
from .cifar10 import load_cifar10
from .digits import load_digits
from .mnist import load_mnist

#: the names :func:`load_dataset` accepts
DATASETS = ("digits", "cifar10", "mnist")

__all__ = ["DATASETS", "DATA_DIR_ENV", "DataError", "Dataset", "MissingDataError", "batch_last", "cache_dir",
           "fingerprint", "load_cifar10", "same_data", "load_dataset", "load_digits", "load_mnist"]


def load_dataset(name, data_dir=None, subset=None, dtype="float32", download=True) -> Dataset:
    """Load a data set by name, split into training, validation and test sets.

    Parameters
    ----------
    name : {"digits", "cifar10", "mnist"}
        The data set.
    data_dir : path-like, optional
        Folder holding the extracted data (or where to download it); default
        :func:`cache_dir`. Ignored for "digits", which ships with the package.
    subset : int, optional
        Keep the first ``subset`` training samples, and validation and test sets shrunk by
        the same factor (rounded up), for quick runs.
    dtype : str, a floating type
        Of the pixel arrays X; default "float32".
    download : bool
        Download missing files (checksum-verified). Ignored for "digits".

    Returns
    -------
    Dataset
        ``X_*`` of shape (N, d) with pixels in [0, 1] and ``y_*`` of shape (N,) int64,
        samples-first, read-only host arrays; ``image_shape`` is (C, H, W).

    Raises
    ------
    ValueError
        For an unknown ``name``, a non-float ``dtype`` or a ``subset`` out of range.
    DataError
        (a ValueError) When the data is missing, corrupted or cannot be downloaded.
    """
    if name == "digits":
        return load_digits(subset=subset, dtype=dtype)
    if name == "cifar10":
        return load_cifar10(data_dir=data_dir, subset=subset, dtype=dtype, download=download)
    if name == "mnist":
        return load_mnist(data_dir=data_dir, subset=subset, dtype=dtype, download=download)
    raise ValueError(f"name must be one of {DATASETS}, got {name!r}")
