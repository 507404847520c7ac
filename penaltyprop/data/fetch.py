"""Downloading with checksums (through ``pooch``) and safe, all-or-nothing tar extraction.

``pooch`` streams a download into a temporary file in the target folder and renames it only
after its hash matched, so a failed download never leaves a file behind. Here every failure
(network, HTTP status, checksum, corrupt or hostile archive) becomes one :class:`DataError`.
"""
from __future__ import annotations

import shutil
import sys
import tarfile
import tempfile
import zlib
from pathlib import Path, PurePosixPath

from .base import DataError

#: Seconds to wait for a server before giving up on it.
TIMEOUT_S = 30


def fetch(urls, known_hash, fname, folder, hint="") -> Path:
    """Download ``fname`` into ``folder`` from the first URL that works, checking its hash.

    A file already there with the right hash is not downloaded again.

    Parameters
    ----------
    urls : sequence of str
        Mirrors, tried in order.
    known_hash : str
        ``"sha256:<hex>"`` or ``"md5:<hex>"``.
    fname : str
        Name of the file in ``folder``.
    folder : path-like
        Created if missing.
    hint : str
        What the user can do instead, appended to the error message.

    Returns
    -------
    pathlib.Path of the verified file.

    Raises
    ------
    DataError
        If every URL failed (no network, HTTP error, wrong checksum); no file is left behind.
    """
    import pooch  # imported here: loading the shipped digits needs no network stack

    downloader = pooch.HTTPDownloader(progressbar=sys.stderr.isatty(), timeout=TIMEOUT_S)
    failures = []
    for url in urls:
        try:
            return Path(pooch.retrieve(url, known_hash, fname=fname, path=folder,
                                       downloader=downloader))
        except ValueError:  # pooch: the downloaded file's hash does not match
            failures.append(f"{url}: wrong checksum")
        except OSError as err:  # requests' exceptions are OSErrors too
            failures.append(f"{url}: {_reason(err)}")
    raise DataError(f"could not download {fname} ({'; '.join(failures)}){hint}")


def _reason(err) -> str:
    """A few words on why a download failed (the full requests message spans a screen)."""
    response = getattr(err, "response", None)
    if response is not None:
        return f"HTTP {response.status_code}"
    return type(err).__name__


def extract_folder(archive, top, folder, check) -> Path:
    """Extract the folder ``top/`` of a .tar.gz archive to ``folder/top``, all or nothing.

    Members are extracted into a temporary folder next to the target, checked by ``check``,
    and only then renamed into place. A member that is not a plain file or folder, or whose
    path is absolute or climbs out with ``..``, is rejected before anything is written
    (``tarfile``'s ``filter="data"`` is applied as well where Python has it).

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
    pathlib.Path ``folder / top``.

    Raises
    ------
    DataError
        If the archive is truncated, corrupted, hostile, lacks ``top/``, or fails ``check``.
        Nothing is left of the extraction then.
    """
    archive, folder = Path(archive), Path(folder)
    staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=folder))
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
        except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
            raise DataError(f"{archive} is truncated or corrupted ({type(err).__name__}: "
                            f"{err}); delete it and download it again") from err
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
