r"""What every data set shares: the :class:`Dataset` record, its errors, its cache folder,
the split / scale / subset rule, and :func:`batch_last`.

Data sets are stored samples-first, one image per row of ``X`` (shape (N, d)), as they sit
on disk. The paper's algorithms want a sample per column (a_0 = X has shape (n_0, N)).
:func:`batch_last` is the one place in the package that converts between the two.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from ..backend import array_module, to_host
from ..backend import numpy as np

#: Environment variable naming the data folder (download cache, or extracted data sets).
DATA_DIR_ENV = "PENALTYPROP_DATA_DIR"


class DataError(ValueError):
    """A data set is missing, incomplete, corrupted, or could not be downloaded.

    The message is one line that says what is wrong and what to do about it.
    """


class MissingDataError(DataError):
    """A data set is not on disk and downloading it was not allowed (``download=False``)."""


@dataclass(frozen=True, eq=False)  # eq on arrays would be ambiguous: compare fields instead
class Dataset:
    """A data set split into training, validation and test parts, samples-first.

    Attributes
    ----------
    name : str
        One of :data:`penaltyprop.data.DATASETS`.
    X_train, X_val, X_test : float array, shape (N, d)
        On the host, pixels in [0, 1], read-only. One sample per row; ``d = C * H * W`` with
        the pixels in (C, H, W) order.
    y_train, y_val, y_test : int64 array, shape (N,)
        Labels in ``0 .. n_classes - 1``, read-only.
    n_classes : int
        The number of classes.
    image_shape : tuple of int
        (C, H, W) of one image, e.g. (1, 8, 8), (3, 32, 32), (1, 28, 28).
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    image_shape: tuple

    @property
    def n_features(self) -> int:
        """d = C * H * W, the length of one sample (n_0 in the paper)."""
        return self.X_train.shape[1]

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, train={len(self.y_train)}, val={len(self.y_val)}, "
                f"test={len(self.y_test)}, image_shape={self.image_shape}, "
                f"n_classes={self.n_classes}, dtype={self.X_train.dtype})")


def batch_last(X, image_shape=None):
    r"""Turn samples-first data into the paper's batch-last layout (a sample per column).

    This is the one place where the package changes between the two layouts.

    Parameters
    ----------
    X : (N, d) array, NumPy or CuPy
        One sample per row, as stored in a :class:`Dataset`.
    image_shape : tuple (C, H, W), optional
        With it, every row is unflattened into an image, for convolutional networks.

    Returns
    -------
    array, shape (d, N) or (C, H, W, N)
        C-contiguous; (d, N) when ``image_shape`` is None, else (C, H, W, N), on X's backend.

    Raises
    ------
    ValueError
        If X is not 2-D, or ``C * H * W != d``.
    """
    xp = array_module(X)
    if X.ndim != 2:
        raise ValueError(f"batch_last: X must have shape (N, d), got {X.shape}")
    N, d = X.shape
    if image_shape is None:
        return xp.ascontiguousarray(X.T)  # (d, N)
    C, H, W = image_shape
    if C * H * W != d:
        raise ValueError(f"batch_last: image_shape {tuple(image_shape)} has {C * H * W} "
                         f"pixels but X has d = {d}")
    return xp.ascontiguousarray(X.reshape(N, C, H, W).transpose(1, 2, 3, 0))  # (C, H, W, N)


def cache_dir() -> Path:
    """The folder where data sets are looked for and downloaded to.

    ``$PENALTYPROP_DATA_DIR`` if set; else ``<repo>/data`` when the package runs from a
    source checkout; else the user cache, ``pooch.os_cache("penaltyprop")``.

    Returns
    -------
    pathlib.Path
        It may not exist yet.

    Raises
    ------
    DataError
        If ``$PENALTYPROP_DATA_DIR`` names a file.
    """
    if os.environ.get(DATA_DIR_ENV):
        return _folder(Path(os.environ[DATA_DIR_ENV]).expanduser(), DATA_DIR_ENV)
    repo = Path(__file__).resolve().parents[2]  # penaltyprop/data/base.py -> repo root
    if (repo / "data").is_dir() and (repo / "pyproject.toml").is_file():
        return repo / "data"
    import pooch

    return Path(pooch.os_cache("penaltyprop"))


def data_root(data_dir=None) -> Path:
    """``data_dir`` as a Path when given, else :func:`cache_dir`.

    Raises
    ------
    DataError
        If the folder named (by ``data_dir`` or ``$PENALTYPROP_DATA_DIR``) is a file.
    """
    if data_dir is None:
        return cache_dir()
    return _folder(Path(data_dir).expanduser(), "data_dir")


def root_name(data_dir=None) -> str:
    """Where :func:`data_root` took the folder from, for messages: the argument or variable."""
    if data_dir is not None:
        return "data_dir"
    return DATA_DIR_ENV if os.environ.get(DATA_DIR_ENV) else "the data cache"


def _folder(path: Path, name: str) -> Path:
    """``path``, unless it exists and is not a folder."""
    if path.exists() and not path.is_dir():
        raise DataError(f"{name} {path} is a file, not a folder; point {name} at a folder")
    return path


def split_scale_subset(name, train, test, *, n_val, scale, n_classes, image_shape,
                       dtype="float32", subset=None, source=None) -> Dataset:
    r"""Assemble a :class:`Dataset` from raw pixels, the same way for every data set.

    The LAST ``n_val`` training samples are the validation set (the paper's rule for CIFAR-10).
    Pixels are divided by ``scale``. With ``subset = n``, the first n training samples are kept,
    and the validation and test sets shrink by the same factor: the first
    ``ceil(n * n_val / n_train)`` of each (never more than they hold).

    Parameters
    ----------
    name : str
        The data set's name.
    train, test : pairs (images, labels)
        images: (N, d) uint8 array; labels: (N,) integer array. ``train`` still holds the
        validation samples at its end.
    n_val : int
        Size of the validation set, taken from the end of ``train``.
    scale : number
        The pixels are divided by it (the maximum pixel value).
    n_classes : int
        The number of classes.
    image_shape : tuple (C, H, W)
        The shape of one image.
    dtype : str or dtype
        A floating type.
    subset : int, optional
        Number of training samples to keep, 1 .. n_train.
    source : str, optional
        The folder or file the data came from, for messages.

    Returns
    -------
    Dataset
        The data set.

    Raises
    ------
    ValueError
        For a non-float ``dtype`` or a ``subset`` outside 1 .. n_train.
    DataError
        If ``train`` holds no more than ``n_val`` samples (nothing would be left to train on,
        and negative indices would wrap the slices), ``n_val`` is 0, ``test`` is empty, or
        every training label is the same.
    """
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise ValueError(f"dtype must be a floating type such as 'float32', got {dtype}")
    (X, y), (X_test, y_test) = train, test
    check_split(name, len(y), len(y_test), n_val, source)
    n_train = len(y) - n_val
    X_train, y_train, X_val, y_val = X[:n_train], y[:n_train], X[n_train:], y[n_train:]
    if (np.asarray(y_train) == y_train[0]).all():  # 100% accuracy, and nothing learnt
        where = f" of {source}" if source is not None else ""
        raise DataError(f"{name}: every training label{where} is {int(y_train[0])}; data of "
                        f"one class cannot train a classifier; the labels are misread or the "
                        f"data is corrupted")
    if subset is not None:
        if not (isinstance(subset, (int, np.integer)) and 1 <= subset <= n_train):
            raise ValueError(f"subset must be an integer in 1..{n_train} for {name!r}, "
                             f"got {subset!r}")
        def keep(n):  # ceil(subset * n / n_train), in exact integer arithmetic
            return -(-subset * n // n_train)

        X_train, y_train = X_train[:subset], y_train[:subset]
        X_val, y_val = X_val[:keep(len(y_val))], y_val[:keep(len(y_val))]
        X_test, y_test = X_test[:keep(len(y_test))], y_test[:keep(len(y_test))]

    def pixels(images):
        out = images.astype(dtype)  # (N, d), a fresh array
        out /= scale
        return _read_only(out)

    def labels(values):
        return _read_only(np.array(values, dtype=np.int64))

    return Dataset(name, pixels(X_train), labels(y_train), pixels(X_val), labels(y_val),
                   pixels(X_test), labels(y_test), n_classes, tuple(image_shape))


def check_split(name, n, n_test, n_val, source=None) -> None:
    """Raise :class:`DataError` naming the counts unless ``n`` training images leave at least
    one after the last ``n_val`` (at least one) go to validation, and there are test images."""
    where = f" in {source}" if source is not None else ""
    if n_val < 1:
        raise DataError(f"{name}: no validation images{where} (the split takes none); the data "
                        f"is too small")
    if n <= n_val:
        raise DataError(f"{name}: {n} training images{where}, too few for the split (the last "
                        f"{n_val} are the validation set); the data is incomplete")
    if n_test == 0:
        raise DataError(f"{name}: no test images{where}; the data is incomplete")


def check_labels(labels, n_classes, source) -> None:
    """Raise :class:`DataError` naming ``source`` if a label lies outside 0 .. n_classes - 1."""
    bad = (labels < 0) | (labels >= n_classes)
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(f"{source}: label {int(labels[i])} of sample {i} is outside "
                        f"0..{n_classes - 1}; the file is corrupted, replace it")


def _read_only(a):
    a.flags.writeable = False
    return a


def fingerprint(data) -> str:
    r"""The identity of a :class:`Dataset`: its sizes and a hash of all of its labels and pixels.

    A training loop stores it with its checkpoint, and an experiment in its results, and both
    compare it on resume, so that a run is never continued on other data of the same size.
    It is the sha256 of every label (int64) and every pixel of the three parts, in float32:
    the same data loaded as float32 or float64 has the same fingerprint (pixels are small
    integers over a scale <= 255, whose float64 value rounds to exactly the float32 one).
    The pixels are hashed in blocks of rows, so the cost is one pass over the data (about a
    second for CIFAR-10's 60,000 images), far below an epoch.

    Parameters
    ----------
    data : Dataset
        Or anything with its ``X_*``, ``y_*`` arrays, samples-first.

    Returns
    -------
    str
        ``"<n_train>/<n_val>/<n_test>x<d>:all:<16 hex digits>"``, e.g.
        ``"1197/300/300x64:all:3f..."``.
    """
    def hash_rows(digest, X):
        for start in range(0, X.shape[0], HASH_ROWS):  # bounded memory for float64 data
            with np.errstate(over="ignore", invalid="ignore"):  # float64 beyond float32: inf
                block = np.ascontiguousarray(X[start:start + HASH_ROWS], dtype=np.float32)
            digest.update(block.tobytes())

    return _fingerprint(data, hash_rows, "all:")


#: rows of pixels converted and hashed at a time by :func:`fingerprint`
HASH_ROWS = 4096


def sampled_fingerprint(data, rows=256) -> str:
    r"""The fingerprint that checkpoints and results written by earlier versions hold: the
    sizes and the sha256 of every label and of ``rows`` evenly spaced samples per part.

    :func:`same_data` uses it to recognise the data of those files, so that they can still
    be resumed. Returns ``"<n_train>/<n_val>/<n_test>x<d>:<16 hex digits>"``.
    """
    def hash_rows(digest, X):
        N = X.shape[0]
        picks = np.unique(np.linspace(0, N - 1, min(rows, N)).round().astype(np.int64))
        with np.errstate(over="ignore", invalid="ignore"):  # float64 beyond float32: inf
            digest.update(np.ascontiguousarray(X[picks], dtype=np.float32).tobytes())

    return _fingerprint(data, hash_rows, "")


def _fingerprint(data, hash_rows, kind) -> str:
    """Sizes, labels, then ``hash_rows(digest, X)`` for every non-empty part."""
    digest = hashlib.sha256()
    sizes = []
    for part in ("train", "val", "test"):
        X, y = to_host(getattr(data, f"X_{part}")), to_host(getattr(data, f"y_{part}"))
        N = len(y)
        sizes.append(N)
        digest.update(f"{part} {X.shape} {N};".encode())
        digest.update(np.ascontiguousarray(y, dtype=np.int64).tobytes())  # (N,)
        if N:
            hash_rows(digest, X)
    d = data.X_train.shape[1]  # n_0, the length of one sample
    return f"{sizes[0]}/{sizes[1]}/{sizes[2]}x{d}:{kind}{digest.hexdigest()[:16]}"


def same_data(recorded, data) -> bool:
    """Whether the fingerprint ``recorded`` (by this version, :func:`fingerprint`, or by an
    earlier one, ``sampled_fingerprint``) is the fingerprint of ``data``."""
    if not isinstance(recorded, str):
        return False
    if ":all:" in recorded:
        return recorded == fingerprint(data)
    return recorded == sampled_fingerprint(data)
