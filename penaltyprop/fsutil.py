r"""File-system helpers for long runs: writable output folders, atomic writes, stale temporaries.

Standard library only, so that every layer may use it.

* :func:`check_writable_dir` checks, before long work starts, that a folder can be created and
  written, and fails with one line naming the path and the argument or flag it came from.
* :func:`check_output_files` checks, before long work starts, that no file it will write is
  a folder or a dangling link.
* :func:`atomic_writer` writes a file through a temporary next to it, then renames it into place.
  The temporary's name records its owner, ``.<name>-p<pid>@<host>-<random>.tmp``, so that a
  later process can tell a leftover of a killed writer from the file of a live one.
* :func:`remove_stale` deletes such leftovers: those whose owner process is gone from this host,
  and, for a caller that holds the folder's :class:`penaltyprop.runlock.RunLock`, every one that
  is older than its lock.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path

#: This machine's name, as the lock files and temporaries record it.
HOST = socket.gethostname()

#: Free bytes a folder's disk must have for :func:`check_writable_dir` (a checkpoint's order).
MIN_FREE_BYTES = 1 << 20

# "<anything>-p<pid>@<host>-<random>[.tmp]": mkstemp's random part never holds a "-"
_OWNER = re.compile(r"-p(?P<pid>\d+)@(?P<host>.+)-[^-]*$")


def owner_tag() -> str:
    """``p<pid>@<host>`` of this process, for the names of its temporaries."""
    return f"p{os.getpid()}@{HOST}"


def owner_of(name):
    """``(pid, host)`` recorded in a temporary's name by :func:`owner_tag`, else None."""
    match = _OWNER.search(name)
    return (int(match["pid"]), match["host"]) if match else None


def pid_alive(pid) -> bool:
    """Whether process ``pid`` exists on this machine (a zombie counts as alive).

    On Windows there is no probe without side effects in the standard library
    (``os.kill`` terminates there): every process counts as alive.
    """
    if pid <= 0:
        return False
    if os.name == "nt":  # pragma: no cover - POSIX here
        return True
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, under another user
        return True
    return True


def why(err: OSError) -> str:
    """A few words for an OSError: its strerror ("Permission denied"), else its class name."""
    return err.strerror or type(err).__name__


def check_writable_dir(path, name, error=ValueError, min_free_bytes=MIN_FREE_BYTES,
                       create=True) -> Path:
    """Create the folder ``path`` if needed and check that a file can be written there.

    Call it before long work starts, so that a run does not fail after hours on its first write.

    Parameters
    ----------
    path : path-like
        The folder.
    name : str
        The argument or flag the path came from (``"--out"``, ``"out_dir"``), for the message.
    error : exception class
        Raised on failure (a ValueError subclass such as ``DataError``).
    min_free_bytes : int
        The folder's disk must have at least this many bytes free.
    create : bool
        False: leave a missing folder missing and check the closest existing folder above it
        instead (for a check before work that may still fail, e.g. on missing data).

    Returns
    -------
    pathlib.Path
        The folder, which exists now (with ``create``).

    Raises
    ------
    error
        One line naming ``name`` and the path: it is a file, it cannot be created, it is not
        writable (read-only, permissions), or its disk is full.
    """
    if not isinstance(path, (str, os.PathLike)) or str(path) == "":
        raise error(f"{name} must be the path of a folder, got {path!r}")
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise error(f"{name} {path} is a file, not a folder")
    for link in (path, *path.parents):  # "File exists" from mkdir would not say why
        if link.is_symlink() and not link.exists():
            raise error(f"{name} {path}: {link} is a link to {os.readlink(link)}, which does not "
                        f"exist; create the folder it points to, or remove the link")
    target = path
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as err:  # a parent is a file, permissions, read-only file system
            raise error(f"{name} {path}: cannot create the folder ({why(err)})") from err
    else:
        while not target.exists():
            target = target.parent
        if not target.is_dir():
            raise error(f"{name} {path}: cannot create the folder ({target} is a file)")
    try:
        fd, probe = tempfile.mkstemp(dir=target, prefix=f".write-test-{owner_tag()}-",
                                     suffix=".tmp")
        try:
            os.write(fd, b"\0" * 4096)  # a block: a full disk refuses it
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(probe)
        free = shutil.disk_usage(target).free
    except OSError as err:  # read-only, permissions, no space left
        raise error(f"{name} {path} is not writable ({why(err)})") from err
    if free < min_free_bytes:
        raise error(f"{name} {path}: its disk is full ({free} bytes free, "
                    f"{min_free_bytes} needed)")
    return path


def check_output_files(folder, files, name, error=ValueError) -> None:
    """Raise ``error`` if a file that a run will write into ``folder`` is a folder, or a link
    that leads nowhere: found before the work, not at its first write.

    Parameters
    ----------
    folder : path-like
        It may not exist yet.
    files : sequence of str
        Names of the files the run writes there (``"checkpoint.npz"``, ``"a/b.png"``).
    name : str
        The argument or flag ``folder`` came from, for the message.
    """
    for file in files:
        path = Path(folder).expanduser() / file
        if path.is_dir():
            raise error(f"{name} {folder}: {path} is a folder, where the run writes its "
                        f"{Path(file).name}; move it away or choose another {name}")
        if path.is_symlink() and not path.exists():
            raise error(f"{name} {folder}: {path} is a link to {os.readlink(path)}, which does "
                        f"not exist; remove the link or choose another {name}")


@contextlib.contextmanager
def atomic_writer(path):
    """Open a binary file that replaces ``path`` only when the ``with`` block succeeds.

    The data goes to ``.<name>-p<pid>@<host>-<random>.tmp`` in the same folder (with the
    permissions a plain ``open`` would give, 0666 less the umask); it is flushed to disk, then
    renamed over ``path`` (``os.replace``, atomic on POSIX and Windows). On any
    error the temporary is deleted, and an OSError (a full disk, ``path`` a folder) names
    ``path``; after a kill -9 :func:`remove_stale` recognises the temporary.

    Yields
    ------
    file object
        A binary file object.
    """
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-{owner_tag()}-",
                                   suffix=".tmp")
    except OSError as err:  # the folder is missing, read-only, or its disk is full
        raise _naming(err, path) from err
    try:
        with os.fdopen(fd, "wb") as f:
            if hasattr(os, "fchmod"):  # mkstemp's 0600 would hide results from the user's group
                os.fchmod(f.fileno(), 0o666 & ~_umask())
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:  # a full disk, or path is a folder: name path, not the temporary
        Path(tmp).unlink(missing_ok=True)
        raise _naming(err, path) from err
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _naming(err, path):
    """``err`` (an OSError) as the same error about ``path``: "No space left on device" comes
    without a file name, and a failed rename names the deleted temporary."""
    return type(err)(err.errno, err.strerror or str(err), str(path))


def _umask() -> int:
    """The process's umask (read by setting it and setting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_text(path, text) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically, through :func:`atomic_writer`."""
    with atomic_writer(path) as f:
        f.write(text.encode("utf-8"))


def temporaries(path):
    """The glob pattern of :func:`atomic_writer`'s temporaries for ``path``, in its folder."""
    return f".{Path(path).name}-*.tmp"


def is_stale(path, since=None) -> bool:
    """Whether the temporary ``path`` is a leftover that no live writer will finish.

    Its owner, read from its name (:func:`owner_tag`), is a process of this host that is gone.
    A name without an owner, or with another host's, is stale only if ``since`` is given and
    the file is older than it: pass the time your :class:`~penaltyprop.runlock.RunLock` on the
    folder was taken, so that no writer that respects the lock can still own it.
    """
    path = Path(path)
    owner = owner_of(path.name)
    if owner is not None and owner[1] == HOST:
        pid = owner[0]
        return pid != os.getpid() and not pid_alive(pid)
    if since is None:
        return False
    try:
        return path.lstat().st_mtime < since
    except FileNotFoundError:  # removed meanwhile by someone else
        return False


def remove_stale(folder, pattern, since=None) -> list:
    """Delete the stale temporaries (files or folders) of ``folder`` that match ``pattern``.

    Parameters
    ----------
    folder : path-like
        A missing folder holds nothing.
    pattern : str
        A glob such as ``".extract-*"`` or :func:`temporaries` of a file.
    since : float, optional
        A ``time.time()``; see :func:`is_stale`.

    Returns
    -------
    list of pathlib.Path
        The paths removed.
    """
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for path in sorted(folder.glob(pattern)):
        if not is_stale(path, since):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed
