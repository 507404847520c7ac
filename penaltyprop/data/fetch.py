"""Downloading with checksums (through ``pooch``), safe all-or-nothing tar extraction, and the
lock that keeps two processes from filling one data cache at once.

Every download and extraction goes to a temporary folder inside the cache,
``.download-p<pid>@<host>-*`` or ``.extract-p<pid>@<host>-*``, and only a verified file or a
checked folder is renamed into place; the loaders never look inside these folders. They work
under :func:`cache_lock`, which also deletes the leftovers of a process killed mid-way. Every
failure (network, HTTP status, checksum, corrupt or hostile archive, a full or read-only disk,
a busy cache) becomes one :class:`DataError` line.
"""
from __future__ import annotations

import contextlib
import gzip
import os
import re
import shutil
import sys
import tarfile
import tempfile
import zlib
from pathlib import Path, PurePosixPath

from ..fsutil import check_writable_dir, owner_tag, remove_stale, why
from ..runlock import LockedError, RunLock
from .base import DataError

#: Seconds to wait for a server before giving up on it.
TIMEOUT_S = 30
#: Seconds to wait for another process that downloads into the same cache.
LOCK_WAIT_S = 1800
#: The temporary folders of downloads and extractions in a cache folder.
STAGING = (".download-*", ".extract-*")


@contextlib.contextmanager
def cache_lock(folder, name):
    """Hold the cache ``folder`` for a download or an extraction.

    Checks that the folder can be created and written, waits up to :data:`LOCK_WAIT_S` for
    another process that holds it, then deletes the leftovers (:data:`STAGING`) that
    processes killed mid-way left there.

    Parameters
    ----------
    folder : path-like
        The cache folder.
    name : str
        Where the folder came from (``"data_dir"``, ``$PENALTYPROP_DATA_DIR``), for messages.

    Yields
    ------
    RunLock
        The held :class:`penaltyprop.runlock.RunLock`.

    Raises
    ------
    DataError
        If the folder is a file, cannot be written, or stays in use by another process.
    """
    folder = check_writable_dir(folder, name, error=DataError)
    try:
        lock = RunLock(folder, what="data cache", wait_s=LOCK_WAIT_S).acquire()
    except LockedError as err:
        raise DataError(str(err)) from None
    try:
        for pattern in STAGING:
            remove_stale(folder, pattern, since=lock.since)
        yield lock
    finally:
        lock.release()


def remove_leftovers(folder) -> list:
    """Delete the staging folders of ``folder`` whose process is gone (no lock needed)."""
    return [path for pattern in STAGING for path in remove_stale(folder, pattern)]


def fetch(urls, known_hash, fname, folder, hint="") -> Path:
    """Download ``fname`` into ``folder`` from the first URL that works, checking its hash.

    A file already there with the right hash is not downloaded again; one with another hash is
    refused (never silently replaced). Call it under :func:`cache_lock`.

    Parameters
    ----------
    urls : sequence of str
        Mirrors, tried in order.
    known_hash : str
        ``"sha256:<hex>"`` or ``"md5:<hex>"``.
    fname : str
        Name of the file in ``folder``.
    folder : path-like
        An existing folder.
    hint : str
        What the user can do instead, appended to the error message.

    Returns
    -------
    pathlib.Path
        The verified file.

    Raises
    ------
    DataError
        "checksum mismatch" with the path and both hashes, for the file already there or for
        every download; otherwise every URL failed (no network, HTTP error). No file is left
        behind.
    """
    import pooch  # imported here: loading the shipped digits needs no network stack

    folder = Path(folder)
    target = folder / fname
    algorithm, expected = known_hash.split(":")
    if target.is_file():
        got = pooch.file_hash(str(target), alg=algorithm)
        if got.lower() == expected.lower():
            return target
        raise DataError(f"checksum mismatch: {target} has {algorithm} {got}, expected "
                        f"{expected}; delete it to download it again")
    downloader = pooch.HTTPDownloader(progressbar=sys.stderr.isatty(), timeout=TIMEOUT_S)
    failures, mismatch = [], False
    staging = Path(tempfile.mkdtemp(prefix=f".download-{owner_tag()}-", dir=folder))
    try:
        for url in urls:
            try:
                path = pooch.retrieve(url, known_hash, fname=fname, path=staging,
                                      downloader=downloader)
                os.replace(path, target)
                return target
            except ValueError as err:  # pooch: the downloaded file's hash does not match
                got = re.search(r"but got (\w+)", str(err))
                if got is None:  # pooch refused the URL itself
                    failures.append(f"{url}: {type(err).__name__}")
                    continue
                failures.append(f"{url}: wrong checksum, got {algorithm} {got[1]}, expected "
                                f"{expected}")
                mismatch = True
            except OSError as err:  # requests' exceptions are OSErrors too
                failures.append(f"{url}: {_reason(err)}")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    lead = f"checksum mismatch for {target}" if mismatch else f"could not download {fname}"
    raise DataError(f"{lead} ({'; '.join(failures)}){hint}")


def _reason(err) -> str:
    """A few words on why a download failed (the full requests message spans a screen)."""
    response = getattr(err, "response", None)
    if response is not None:
        return f"HTTP {response.status_code}"
    if type(err) is OSError or isinstance(err, (PermissionError, FileNotFoundError)):
        return why(err)  # writing the file: "No space left on device", "Permission denied"
    return type(err).__name__


def extract_folder(archive, top, folder, check) -> Path:
    """Extract the folder ``top/`` of a .tar.gz archive to ``folder/top``, all or nothing.

    Members are extracted into a temporary folder next to the target, checked by ``check``,
    and only then renamed into place. A member that is not a plain file or folder, or whose
    path is absolute or climbs out with ``..``, is rejected before anything is written
    (``tarfile``'s ``filter="data"`` is applied as well where Python has it). Call it under
    :func:`cache_lock`.

    Parameters
    ----------
    archive : path-like
        A gzip-compressed tar file.
    top : str
        Name of the folder in the archive to extract.
    folder : path-like
        Where ``top/`` is created; it must not hold a ``top/`` already.
    check : callable
        ``check(path)`` raises :class:`DataError` if the extracted folder is not usable.

    Returns
    -------
    pathlib.Path
        ``folder / top``.

    Raises
    ------
    DataError
        If the archive is truncated, corrupted, hostile, lacks ``top/``, or fails ``check``,
        or the folder cannot take the files (full disk). Nothing is left of the extraction then.
    """
    archive, folder = Path(archive), Path(folder)
    staging = Path(tempfile.mkdtemp(prefix=f".extract-{owner_tag()}-", dir=folder))
    try:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                members = tar.getmembers()  # reads the whole archive: truncation shows up here
                for member in members:
                    _check_member(member, archive)
                if hasattr(tarfile, "data_filter"):  # Python >= 3.12 and patched 3.8 - 3.11
                    tar.extractall(staging, members, filter="data")
                else:  # pragma: no cover - old Pythons: our member checks above still apply
                    tar.extractall(staging, members)
        except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as err:
            raise DataError(f"{archive} is truncated or corrupted ({type(err).__name__}: "
                            f"{err}); delete it and download it again") from err
        except OSError as err:  # writing: a full disk, permissions
            raise DataError(f"cannot extract {archive} into {folder} ({why(err)})") from err
        if not (staging / top).is_dir():
            raise DataError(f"{archive} holds no {top}/ folder; it is not the expected "
                            f"archive, delete it")
        check(staging / top)
        (staging / top).rename(folder / top)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder / top


def _check_member(member: tarfile.TarInfo, archive: Path) -> None:
    """Reject links, devices, absolute paths and paths that leave the target folder."""
    path = PurePosixPath(member.name)
    if not (member.isfile() or member.isdir()):
        raise DataError(f"{archive}: member {member.name!r} is a link or special file; "
                        f"the archive is not the official one, delete it")
    if path.is_absolute() or ".." in path.parts or "\\" in member.name:
        raise DataError(f"{archive}: member {member.name!r} would be written outside the "
                        f"target folder; the archive is not the official one, delete it")
