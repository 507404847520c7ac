"""The data module: each data set loads exactly the bytes on disk, split by the stated rule,
and every way the data can be missing or wrong ends in a one-line DataError, with nothing
half-written left in the cache.

All offline: CIFAR-10 and MNIST are replaced by small files of the same format written here
(the record counts are module constants, patched down), and downloads come from a local HTTP
server on 127.0.0.1.
"""
import functools
import gzip
import hashlib
import io
import socket
import struct
import tarfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from penaltyprop.data import (
    DATA_DIR_ENV,
    DATASETS,
    DataError,
    batch_last,
    cache_dir,
    cifar10,
    digits,
    load_dataset,
    mnist,
)
from penaltyprop.data.mnist import read_idx

RECORDS_PER_FILE, N_VAL = 4, 3  # small CIFAR-10: 5 x 4 = 20 training records, 3 for validation


# --------------------------------------------------------------------------- fixtures
@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache folder named by the environment variable (never the repo's data/)."""
    folder = tmp_path / "cache"
    folder.mkdir()
    monkeypatch.setenv(DATA_DIR_ENV, str(folder))
    return folder


@pytest.fixture
def small_cifar(monkeypatch):
    monkeypatch.setattr(cifar10, "RECORDS_PER_FILE", RECORDS_PER_FILE)
    monkeypatch.setattr(cifar10, "N_VALIDATION", N_VAL)


@pytest.fixture
def small_mnist(monkeypatch):
    """MNIST files of 8 training and 3 test images (write_mnist_folder's), 2 for validation."""
    monkeypatch.setattr(mnist, "N_TRAIN_FILE", 8)
    monkeypatch.setattr(mnist, "N_TEST_FILE", 3)
    monkeypatch.setattr(mnist, "N_VALIDATION", 2)


@pytest.fixture
def server(tmp_path, monkeypatch):
    """A local HTTP server for the folder it returns; yields (base URL, served folder)."""
    served = tmp_path / "served"
    served.mkdir()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=served))
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", served
    httpd.shutdown()
    httpd.server_close()


def write_cifar_folder(folder, seed=0):
    """Write small binary batches; return the training and test records, (n, 3073) uint8.

    Training pixels stay below 200 and one validation pixel is 255, so scaling by the
    maximum of the *training* images shows.
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)

    def records(n, top):
        out = rng.integers(0, top, size=(n, cifar10.RECORD_BYTES), dtype=np.uint8)
        out[:, 0] = rng.integers(0, 10, size=n)
        return out

    train = records(5 * RECORDS_PER_FILE, 200)
    train[-1, 1] = 255  # a validation pixel
    train[0, 1] = 199  # the training maximum
    test = records(RECORDS_PER_FILE, 256)
    for i, name in enumerate(cifar10.TRAIN_FILES):
        (folder / name).write_bytes(train[i * RECORDS_PER_FILE:(i + 1) * RECORDS_PER_FILE]
                                    .tobytes())
    (folder / cifar10.TEST_FILE).write_bytes(test.tobytes())
    return train, test


def tar_gz(path, members):
    """Write a .tar.gz of (name, bytes or None for a folder) pairs; return its sha256."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cifar_archive(path, tmp_path):
    """A cifar-10-binary.tar.gz look-alike of a small folder; returns (sha256, train, test)."""
    train, test = write_cifar_folder(tmp_path / "src" / cifar10.FOLDER)
    files = sorted((tmp_path / "src" / cifar10.FOLDER).iterdir())
    members = [(cifar10.FOLDER, None)] + [(f"{cifar10.FOLDER}/{f.name}", f.read_bytes())
                                          for f in files]
    return tar_gz(path, members), train, test


def serve_archive(monkeypatch, server, tmp_path, mangle=lambda data: data, sha=None):
    """Serve a (possibly mangled) archive, point cifar10.URL at it; return the records."""
    base, served = server
    path = served / cifar10.ARCHIVE
    good_sha, train, test = cifar_archive(path, tmp_path)
    path.write_bytes(mangle(path.read_bytes()))
    monkeypatch.setattr(cifar10, "URL", base + cifar10.ARCHIVE)
    monkeypatch.setattr(cifar10, "SHA256", sha or hashlib.sha256(path.read_bytes()).hexdigest())
    return train, test


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pixels(X, scale):
    """Undo the scaling: the integer pixel values (x / scale * scale is within rounding)."""
    return np.rint(np.asarray(X, dtype=np.float64) * scale).astype(np.uint8)


def one_line(err):
    return "\n" not in str(err.value)


# --------------------------------------------------------------------------- entry point
def test_datasets_lists_the_three_names():
    assert DATASETS == ("digits", "cifar10", "mnist")


def test_unknown_name_is_a_value_error_naming_the_choices():
    with pytest.raises(ValueError, match=r"name must be one of .*digits.*cifar10.*mnist"):
        load_dataset("imagenet")


def test_cache_is_the_environment_variable_else_the_checkout_data_folder(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    assert cache_dir() == tmp_path
    monkeypatch.delenv(DATA_DIR_ENV)
    assert cache_dir() == Path(__file__).resolve().parents[1] / "data"  # a source checkout


# --------------------------------------------------------------------------- digits
def test_digits_has_the_documented_shapes_ranges_and_labels():
    ds = load_dataset("digits")
    assert (ds.name, ds.n_classes, ds.image_shape) == ("digits", 10, (1, 8, 8))
    assert ds.X_train.shape == (1197, 64) and ds.X_val.shape == (300, 64)
    assert ds.X_test.shape == (300, 64) and ds.n_features == 64
    for X, y in [(ds.X_train, ds.y_train), (ds.X_val, ds.y_val), (ds.X_test, ds.y_test)]:
        assert X.dtype == np.float32 and y.dtype == np.int64 and len(X) == len(y)
        assert X.min() == 0.0 and X.max() == 1.0  # pixels 0..16 divided by 16
        assert set(np.unique(y)) == set(range(10))
        assert not X.flags.writeable and not y.flags.writeable


def test_digits_split_is_deterministic_and_a_partition_of_the_file():
    first, again = load_dataset("digits", dtype="float64"), load_dataset("digits")
    np.testing.assert_array_equal(first.X_train, again.X_train)  # 16ths are exact in float32
    np.testing.assert_array_equal(first.y_test, again.y_test)
    parts = np.concatenate([np.column_stack([ds_X * 16, ds_y]) for ds_X, ds_y in
                            [(first.X_train, first.y_train), (first.X_val, first.y_val),
                             (first.X_test, first.y_test)]])
    table = digits.read_digits(digits.DIGITS_FILE)
    np.testing.assert_array_equal(np.unique(parts, axis=0), np.unique(table, axis=0))
    assert len(parts) == len(table) == 1797
    # Pinned: the split is default_rng(0).permutation; a NumPy change to it must show here.
    assert first.y_train[:8].tolist() == [6, 6, 6, 2, 5, 6, 6, 2]


def test_digits_subset_shrinks_all_three_parts_by_the_same_factor():
    ds = load_dataset("digits", subset=100)
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (100, 26, 26)  # ceil(100*300/1197)
    full = load_dataset("digits")
    np.testing.assert_array_equal(ds.X_val, full.X_val[:26])
    with pytest.raises(ValueError, match="subset"):
        load_dataset("digits", subset=0)
    with pytest.raises(ValueError, match="dtype"):
        load_dataset("digits", dtype="int32")


def test_digits_with_a_corrupted_file_is_a_data_error(tmp_path, monkeypatch):
    data = bytearray(digits.DIGITS_FILE.read_bytes())
    data[100] ^= 1
    (tmp_path / "digits.csv.gz").write_bytes(bytes(data))
    monkeypatch.setattr(digits, "DIGITS_FILE", tmp_path / "digits.csv.gz")
    with pytest.raises(DataError, match="sha256") as err:
        load_dataset("digits")
    assert one_line(err)


# --------------------------------------------------------------------------- CIFAR-10 folder
def test_cifar_folder_gives_exactly_the_bytes_written(tmp_path, small_cifar):
    train, test = write_cifar_folder(tmp_path / cifar10.FOLDER)
    ds = load_dataset("cifar10", data_dir=tmp_path / cifar10.FOLDER)
    scale = 199  # the maximum pixel of the training part, not of the validation part
    n_train = 5 * RECORDS_PER_FILE - N_VAL
    np.testing.assert_array_equal(ds.y_train, train[:n_train, 0])
    np.testing.assert_array_equal(ds.y_val, train[n_train:, 0])  # the last N_VAL are validation
    np.testing.assert_array_equal(ds.y_test, test[:, 0])
    np.testing.assert_array_equal(pixels(ds.X_train, scale), train[:n_train, 1:])
    np.testing.assert_array_equal(pixels(ds.X_val, scale), train[n_train:, 1:])
    np.testing.assert_array_equal(pixels(ds.X_test, scale), test[:, 1:])
    # Channel-major records: pixel (c, h, w) of image n is byte 1 + 1024 c + 32 h + w.
    images = pixels(batch_last(ds.X_test, ds.image_shape), scale)  # (3, 32, 32, N)
    for c, h, w, n in [(0, 0, 0, 0), (1, 2, 3, 1), (2, 31, 30, 3)]:
        assert images[c, h, w, n] == test[n, 1 + 1024 * c + 32 * h + w]
    assert ds.image_shape == (3, 32, 32) and ds.n_classes == 10


def test_cifar_folder_found_by_its_parent_and_by_the_environment(tmp_path, cache, small_cifar):
    train, _ = write_cifar_folder(cache / cifar10.FOLDER)
    by_env = load_dataset("cifar10", download=False)
    by_parent = load_dataset("cifar10", data_dir=cache, download=False)
    np.testing.assert_array_equal(by_env.X_train, by_parent.X_train)
    np.testing.assert_array_equal(by_env.y_train, train[:5 * RECORDS_PER_FILE - N_VAL, 0])


def test_cifar_subset_keeps_the_first_images(tmp_path, small_cifar):
    train, test = write_cifar_folder(tmp_path / cifar10.FOLDER)
    ds = load_dataset("cifar10", data_dir=tmp_path, subset=5)
    # ceil(5 * 3 / 17) = 1 validation and ceil(5 * 4 / 17) = 2 test images
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (5, 1, 2)
    np.testing.assert_array_equal(ds.y_train, train[:5, 0])
    np.testing.assert_array_equal(ds.y_test, test[:2, 0])


@pytest.mark.parametrize("name", ["data_batch_3.bin", "test_batch.bin"])
def test_cifar_missing_or_wrong_sized_file_names_the_file(tmp_path, small_cifar, name):
    write_cifar_folder(tmp_path / cifar10.FOLDER)
    path = tmp_path / cifar10.FOLDER / name
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(DataError, match=f"{name} has {path.stat().st_size} bytes") as err:
        load_dataset("cifar10", data_dir=tmp_path)
    assert one_line(err)
    path.unlink()
    with pytest.raises(DataError, match=f"{name} is missing"):
        load_dataset("cifar10", data_dir=tmp_path)


def test_cifar_label_out_of_range_names_the_file(tmp_path, small_cifar):
    write_cifar_folder(tmp_path / cifar10.FOLDER)
    path = tmp_path / cifar10.FOLDER / "data_batch_2.bin"
    data = bytearray(path.read_bytes())
    data[cifar10.RECORD_BYTES] = 10  # label of the second record
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"data_batch_2.bin: label 10 of sample 1"):
        load_dataset("cifar10", data_dir=tmp_path)


def test_cifar_without_data_or_download_says_where_to_put_it(cache):
    with pytest.raises(DataError, match=f"cifar-10-batches-bin/.*{DATA_DIR_ENV}.*download") as err:
        load_dataset("cifar10", download=False)
    assert one_line(err) and cifar10.URL in str(err.value)


# --------------------------------------------------------------------------- CIFAR-10 download
def test_cifar_downloads_verifies_and_extracts(tmp_path, cache, small_cifar, server, monkeypatch):
    train, test = serve_archive(monkeypatch, server, tmp_path)
    ds = load_dataset("cifar10")
    np.testing.assert_array_equal(ds.y_test, test[:, 0])
    n_train = 5 * RECORDS_PER_FILE - N_VAL
    np.testing.assert_array_equal(pixels(ds.X_train, 199), train[:n_train, 1:])
    assert sorted(p.name for p in cache.iterdir()) == sorted([cifar10.ARCHIVE, cifar10.FOLDER])
    (server[1] / cifar10.ARCHIVE).unlink()  # the second load needs no server
    np.testing.assert_array_equal(load_dataset("cifar10").X_val, ds.X_val)


def test_cifar_wrong_checksum_leaves_nothing_behind(tmp_path, cache, small_cifar, server,
                                                    monkeypatch):
    serve_archive(monkeypatch, server, tmp_path, sha="0" * 64)
    with pytest.raises(DataError, match="wrong checksum") as err:
        load_dataset("cifar10")
    assert one_line(err) and list(cache.iterdir()) == []


def test_cifar_truncated_download_fails_its_checksum(tmp_path, cache, small_cifar, server,
                                                     monkeypatch):
    sha, _, _ = cifar_archive(tmp_path / "good.tar.gz", tmp_path / "good")
    serve_archive(monkeypatch, server, tmp_path, mangle=lambda d: d[: len(d) // 2], sha=sha)
    with pytest.raises(DataError, match="wrong checksum"):
        load_dataset("cifar10")
    assert list(cache.iterdir()) == []


def test_cifar_truncated_archive_is_rejected_on_extraction(tmp_path, cache, small_cifar, server,
                                                           monkeypatch):
    # The checksum is that of the truncated file: only extraction can notice.
    serve_archive(monkeypatch, server, tmp_path, mangle=lambda d: d[: len(d) // 2])
    with pytest.raises(DataError, match="truncated or corrupted") as err:
        load_dataset("cifar10")
    assert one_line(err) and list(cache.iterdir()) == []


@pytest.mark.parametrize("name", [f"{cifar10.FOLDER}/../../escaped.bin", "/tmp/escaped.bin"])
def test_cifar_archive_member_outside_the_folder_is_rejected(tmp_path, cache, small_cifar,
                                                             server, monkeypatch, name):
    base, served = server
    write_cifar_folder(tmp_path / "src")
    members = [(f"{cifar10.FOLDER}/{f.name}", f.read_bytes())
               for f in sorted((tmp_path / "src").iterdir())] + [(name, b"x")]
    sha = tar_gz(served / cifar10.ARCHIVE, members)
    monkeypatch.setattr(cifar10, "URL", base + cifar10.ARCHIVE)
    monkeypatch.setattr(cifar10, "SHA256", sha)
    with pytest.raises(DataError, match="outside the target folder"):
        load_dataset("cifar10")
    assert list(cache.iterdir()) == [] and not (tmp_path / "escaped.bin").exists()


def test_cifar_archive_with_a_symlink_is_rejected(tmp_path, cache, small_cifar, server,
                                                  monkeypatch):
    base, served = server
    with tarfile.open(served / cifar10.ARCHIVE, "w:gz") as tar:
        link = tarfile.TarInfo(f"{cifar10.FOLDER}/data_batch_1.bin")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    monkeypatch.setattr(cifar10, "URL", base + cifar10.ARCHIVE)
    monkeypatch.setattr(cifar10, "SHA256",
                        hashlib.sha256((served / cifar10.ARCHIVE).read_bytes()).hexdigest())
    with pytest.raises(DataError, match="link or special file"):
        load_dataset("cifar10")
    assert list(cache.iterdir()) == []


def test_cifar_archive_with_wrong_sized_files_leaves_nothing_behind(tmp_path, cache, server,
                                                                    small_cifar, monkeypatch):
    serve_archive(monkeypatch, server, tmp_path)
    monkeypatch.setattr(cifar10, "RECORDS_PER_FILE", RECORDS_PER_FILE + 1)
    with pytest.raises(DataError, match="data_batch_1.bin has"):
        load_dataset("cifar10")
    assert list(cache.iterdir()) == []


def test_network_error_is_a_data_error_not_a_traceback(cache, monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setattr(cifar10, "URL", f"http://127.0.0.1:{free_port()}/{cifar10.ARCHIVE}")
    with pytest.raises(DataError, match=f"could not download .*{DATA_DIR_ENV}") as err:
        load_dataset("cifar10")
    assert one_line(err) and list(cache.iterdir()) == []


# --------------------------------------------------------------------------- MNIST
def idx_gz(path, array):
    """Write a gzipped IDX file of unsigned bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def write_mnist_folder(folder, n_train=8, n_test=3, seed=0):
    """Small MNIST files; returns {file name: array written}."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, n_train),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, n_test),
    }
    for name, array in arrays.items():
        idx_gz(folder / name, array)
    return arrays


def test_mnist_folder_parse_and_split(tmp_path, small_mnist, monkeypatch):
    monkeypatch.setattr(mnist, "N_VALIDATION", 2)
    arrays = write_mnist_folder(tmp_path / "mnist")
    ds = load_dataset("mnist", data_dir=tmp_path, download=False)  # finds mnist/ in its parent
    images = arrays["train-images-idx3-ubyte.gz"].reshape(8, 784)
    labels = arrays["train-labels-idx1-ubyte.gz"]
    np.testing.assert_array_equal(pixels(ds.X_train, 255), images[:6])  # the last 2 are validation
    np.testing.assert_array_equal(pixels(ds.X_val, 255), images[6:])
    np.testing.assert_array_equal(ds.y_val, labels[6:])
    np.testing.assert_array_equal(ds.y_test, arrays["t10k-labels-idx1-ubyte.gz"])
    assert ds.image_shape == (1, 28, 28) and ds.X_train.dtype == np.float32


def test_read_idx_checks_magic_and_length(tmp_path):
    path = tmp_path / "x.gz"
    idx_gz(path, np.arange(12).reshape(3, 4))
    np.testing.assert_array_equal(read_idx(path), np.arange(12).reshape(3, 4))
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-1]))
    with pytest.raises(DataError, match="truncated"):
        read_idx(path)
    path.write_bytes(gzip.compress(b"\x00\x00\x0d\x01" + raw[4:]))  # 0x0d: float, not ubyte
    with pytest.raises(DataError, match="magic number 00000d01"):
        read_idx(path)
    path.write_bytes(path.read_bytes()[:10])
    with pytest.raises(DataError, match="not a readable gzip file"):
        read_idx(path)


def test_mnist_label_out_of_range_names_the_file(tmp_path, small_mnist):
    write_mnist_folder(tmp_path)
    idx_gz(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([1, 11, 2]))
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz: label 11"):
        load_dataset("mnist", data_dir=tmp_path, download=False)


def test_mnist_download_falls_through_to_the_second_mirror(tmp_path, cache, server,
                                                           small_mnist, monkeypatch):
    base, served = server
    arrays = write_mnist_folder(served / "good")
    md5 = {name: hashlib.md5((served / "good" / name).read_bytes()).hexdigest()
           for name in arrays}
    monkeypatch.setattr(mnist, "MD5", md5)
    monkeypatch.setattr(mnist, "MIRRORS", (base + "missing/", base + "good/"))  # first: 404
    monkeypatch.setattr(mnist, "N_VALIDATION", 2)
    ds = load_dataset("mnist")
    np.testing.assert_array_equal(ds.y_train, arrays["train-labels-idx1-ubyte.gz"][:6])
    assert sorted(p.name for p in (cache / "mnist").iterdir()) == sorted(arrays)


def test_mnist_md5_mismatch_is_a_data_error_and_leaves_no_file(tmp_path, cache, server,
                                                               monkeypatch):
    base, served = server
    write_mnist_folder(served)
    monkeypatch.setattr(mnist, "MIRRORS", (base,))  # the real md5 sums do not match fakes
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz .*wrong checksum") as err:
        load_dataset("mnist")
    assert one_line(err) and list((cache / "mnist").iterdir()) == []


# --------------------------------------------------------------------------- batch_last
def test_batch_last_puts_one_sample_per_column():
    X = np.arange(2 * 12, dtype=np.float32).reshape(2, 12)  # N = 2 samples, d = 12
    A = batch_last(X)
    assert A.shape == (12, 2) and A.flags.c_contiguous
    np.testing.assert_array_equal(A, X.T)
    images = batch_last(X, (3, 2, 2))  # (C, H, W, N)
    assert images.shape == (3, 2, 2, 2) and images.flags.c_contiguous
    np.testing.assert_array_equal(images[..., 1], X[1].reshape(3, 2, 2))
    with pytest.raises(ValueError, match="image_shape"):
        batch_last(X, (1, 3, 3))
