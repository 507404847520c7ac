r"""One process at a time in an output folder: a lock file with the owner's pid and host.

>>> with RunLock("runs/a", what="run"):        # a second holder fails at once:
...     train(...)                              # LockedError: run folder runs/a is in use by ...

The lock is the file ``<folder>/.penaltyprop.lock``. It holds one line of JSON with the owner's
pid, host, what it does, and when it started, for the messages. What makes it exclusive is the
operating system's lock on that file (``fcntl.flock``), which the kernel drops when its owner
dies, even by kill -9: a lock file left by a dead process is therefore *stale*, taken over
without a word, and its former owner reported in :attr:`RunLock.stale_owner`. A clean release
deletes the file. A lock file written from another host, whose lock is free here, is refused
rather than taken over: that host's file system may not share its locks with this one.

Where ``fcntl`` is missing (Windows), the file is created exclusively instead, and a lock left by
a process of this host that is gone is taken over (on POSIX; Windows keeps it, see
:func:`penaltyprop.fsutil.pid_alive`).

A RunLock is not reentrant: a second RunLock on the same folder fails in the same process too.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from .fsutil import HOST, pid_alive, why

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

#: Name of the lock file inside the locked folder.
LOCK_FILE = ".penaltyprop.lock"

#: Seconds between two attempts of a RunLock that waits.
POLL_S = 0.1


class LockedError(ValueError):
    """Another live process holds the lock of a folder. The message names folder, pid and host."""


class RunLock:
    """Exclusive use of a folder by this process, as a context manager.

    Parameters
    ----------
    folder : path-like
        The folder to lock; created if missing.
    what : str
        What the folder is for, in messages: ``"run"``, ``"experiment"``, ``"data cache"``.
    wait_s : float
        Seconds to wait for a live holder to finish before failing; 0 fails at once.

    Attributes
    ----------
    path : pathlib.Path
        The lock file.
    since : float or None
        ``time.time()`` when the lock was taken; temporaries older than it are stale
        (:func:`penaltyprop.fsutil.remove_stale`).
    stale_owner : dict or None
        The owner recorded in a stale lock file that was taken over (pid, host, what, since).

    Raises
    ------
    LockedError
        On entry, if a live process holds the lock (or a lock of another host does).
    ValueError
        On entry, if the folder cannot be created or the lock file written (names the path).
    """

    def __init__(self, folder, what="run", wait_s=0.0):
        self.folder = Path(folder)
        self.what = what
        self.wait_s = float(wait_s)
        self.path = self.folder / LOCK_FILE
        self.since = None
        self.stale_owner = None
        self._fd = None

    def __repr__(self) -> str:
        state = "held" if self._fd is not None else "free"
        return f"RunLock({str(self.folder)!r}, what={self.what!r}) [{state}]"

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()

    @property
    def held(self) -> bool:
        """Whether this object holds the lock now."""
        return self._fd is not None

    def acquire(self):
        """Take the lock, or raise :class:`LockedError` naming its owner. Returns self."""
        if self._fd is not None:
            raise LockedError(f"{self} is already held by this object")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ValueError(f"{self.what} folder {self.folder}: cannot create it "
                             f"({why(err)})") from err
        deadline = time.monotonic() + self.wait_s
        while True:
            try:
                owner = self._try_flock() if fcntl is not None else self._try_exclusive()
            except OSError as err:
                raise ValueError(f"{self.what} folder {self.folder}: cannot write its lock "
                                 f"file {self.path} ({why(err)})") from err
            if owner is None:
                return self
            if time.monotonic() >= deadline:
                raise LockedError(self._message(owner))
            time.sleep(POLL_S)

    def release(self) -> None:
        """Delete the lock file and drop the lock; a no-op when not held."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if _same_file(fd, self.path):
                self.path.unlink()  # while still holding it: no one can take the old file
        finally:
            os.close(fd)

    # ------------------------------------------------------------------ the two protocols
    def _try_flock(self):
        """One attempt with fcntl.flock; None when taken, else the owner found in the file."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # a live process holds it
            os.close(fd)
            return _read_owner(self.path) or {}
        if not _same_file(fd, self.path):  # its holder deleted it between our open and flock
            os.close(fd)
            return self._try_flock()
        previous = _read_owner_fd(fd)
        if previous and previous.get("host") != HOST:
            os.close(fd)  # another host's lock: its file system may not share flock with ours
            return previous
        self._own(fd, previous)
        return None

    def _try_exclusive(self):
        """One attempt without fcntl: create the file exclusively; take over a dead owner's."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            owner = _read_owner(self.path)
            if not (owner and owner.get("host") == HOST and isinstance(owner.get("pid"), int)
                    and not pid_alive(owner["pid"])):
                return owner or {}
            self.path.unlink(missing_ok=True)  # stale: its process is gone
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            self._own(fd, owner)
            return None
        self._own(fd, None)
        return None

    def _own(self, fd, previous) -> None:
        """Write this process into the lock file ``fd`` that we now hold."""
        self.since = time.time()
        self.stale_owner = previous or None
        record = {"pid": os.getpid(), "host": HOST, "what": self.what,
                  "since": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))}
        try:
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, (json.dumps(record) + "\n").encode())
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def _message(self, owner) -> str:
        """One line: which folder, held by whom, and what to do."""
        who = (f"pid {owner['pid']} on {owner['host']}" if "pid" in owner and "host" in owner
               else "another process")
        since = f" since {owner['since']}" if "since" in owner else ""
        what = f" ({owner['what']})" if owner.get("what") not in (None, self.what) else ""
        advice = ("wait for it to finish or use another folder" if owner.get("host") in
                  (HOST, None) else f"if no run on {owner['host']} uses it, delete {self.path}")
        return f"{self.what} folder {self.folder} is in use by {who}{what}{since}: {advice}"


def _same_file(fd, path) -> bool:
    """Whether the open file ``fd`` is still the file at ``path``."""
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _read_owner_fd(fd):
    """The owner record in an open lock file, or None when empty or unreadable."""
    os.lseek(fd, 0, os.SEEK_SET)
    return _parse(os.read(fd, 4096))


def _read_owner(path):
    """The owner record in the lock file ``path``, or None."""
    try:
        return _parse(Path(path).read_bytes()[:4096])
    except OSError:
        return None


def _parse(raw):
    try:
        record = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return record if isinstance(record, dict) else None
