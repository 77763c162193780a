"""Who may work on a run directory at once: advisory POSIX record locks (``fcntl.lockf``, i.e.
``fcntl(F_SETLK)``) that go with their process, however it ends (kill -9 included).

- RUN/.lock, **exclusive**: a whole-run command (`run`, `init`, `phase`) holds the directory alone.
  A second one (a user starting `make study` twice, a requeued job overlapping its predecessor) is
  refused with the holder's PID, or waits for it with ``wait``.
- RUN/.lock, **shared**: commands that work on one chain (`run --only`, `cycle`, `select` in a
  run) hold it together, so chains run side by side (`make -j`, a SLURM array, several GPUs) while
  a whole-run command is kept out.
- a chain's folder (RUN/<paradigm>/<arm>/.lock) and the shared cycle 1 (RUN/shared/.lock),
  **exclusive**: one process per chain; a chain that needs cycle 1 while another process makes it
  waits for it and then finds it done.

Why lockf and not flock: on a cluster file system a run directory is seen from several nodes, and
POSIX locks are the ones kept coherent across nodes (GPFS; Lustre mounted with ``-o flock``; NFS
through lockd), whereas ``flock`` excludes only within one node on GPFS and fails with ENOSYS on
Lustre mounted without ``-o flock``. A file system with no POSIX locks at all is named in a
one-line UserError rather than run on unlocked.

The per-process rule: a POSIX lock belongs to the process, not to a file descriptor, so two opens
of one file in one process would not exclude each other, and closing *any* descriptor of the file
would drop the process's lock. So each process keeps one registry of the locks it holds, keyed by
the resolved path of the lock file, with one open descriptor per file (never a second one, not even
to read the holder's line). Within a process a lock file then behaves as flock did between two
opens: an exclusive request while the process holds the file (exclusive or shared) is refused like
one from another process (with ``wait``, waiting for itself would never end, so the same thread is
refused too; another thread of the process waits for the holder to let go); a shared request while
it holds the file shared is granted and counted, and only the last release unlocks and closes it.
A forked child holds none of its parent's locks (POSIX locks are not inherited) and starts with an
empty registry.
"""
from __future__ import annotations

import errno
import os
import shutil
import socket
import threading
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, TextIO

from .errors import UserError

LOCK = ".lock"

_BUSY = (errno.EACCES, errno.EAGAIN)
_UNSUPPORTED = {errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOLCK}


@contextmanager
def exclusive(root: str | Path, wait: bool = False) -> Iterator[None]:
    """Hold RUN/.lock alone for the body; a directory this call created is removed again when the
    body fails with a UserError (a refused run leaves nothing behind)."""
    with _held(Path(root), shared=False, wait=wait):
        yield


@contextmanager
def shared(root: str | Path, wait: bool = False) -> Iterator[None]:
    """Hold RUN/.lock together with other chain commands; refused (or waits) while a whole-run
    command holds it alone."""
    with _held(Path(root), shared=True, wait=wait):
        yield


@contextmanager
def part(root: str | Path, name: str) -> Iterator[None]:
    """Hold the lock of one part of a run (a chain, the shared cycle 1) alone, waiting for it; it
    never removes anything (the part's folder holds finished work)."""
    with _held(Path(root), shared=False, wait=True, name=f".{name}.lock", keep=True):
        yield


class _Hold:
    """One lock file this process holds (or is taking): its only descriptor, and who holds it."""

    __slots__ = ("fh", "shared", "threads", "pending", "waits")

    def __init__(self, fh: TextIO, shared: bool, waits: bool) -> None:
        self.fh = fh
        self.shared = shared
        self.threads: Counter[int] = Counter()
        self.pending = True  # lockf not granted yet
        self.waits = waits  # ... and may block for long


_holds: dict[str, _Hold] = {}
_cond = threading.Condition()
_orphans: list[TextIO] = []  # a forked child's copies of its parent's descriptors: never closed


def _after_fork_in_child() -> None:
    global _cond
    # the child holds none of these locks; its copies of the descriptors stay open, as closing one would drop a
    # lock the child may later take on the same file
    _orphans.extend(h.fh for h in _holds.values())
    _holds.clear()
    _cond = threading.Condition()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


@contextmanager
def _held(root: Path, shared: bool, wait: bool, name: str = LOCK, keep: bool = False) -> Iterator[None]:
    fresh = not root.exists() and not keep
    root.mkdir(parents=True, exist_ok=True)
    path = root / name
    try:
        key, hold, me = _acquire(root, path, shared, wait)
    except _Unsupported:
        if fresh:
            shutil.rmtree(root, ignore_errors=True)
        raise
    try:
        yield
    except UserError:
        if fresh:
            shutil.rmtree(root, ignore_errors=True)
        raise
    finally:
        _release(key, hold, me)


class _Unsupported(UserError):
    """The file system has no POSIX locks."""


def _refused(root: Path, holder: str) -> UserError:
    return UserError(f"'{root}' is in use by {holder}; wait for it to end, or pass --wait to start when it does")


def _holder(fh: TextIO, patience: float = 1.0) -> str:
    """The last holder line of a lock file, read through ``fh`` itself: opening and closing the file
    a second time would drop this process's lock on it. A holder that has just taken the lock writes
    its line a moment later: an empty file is read again for up to ``patience`` seconds."""
    deadline = time.monotonic() + patience
    while True:
        try:
            fd = fh.fileno()
            text = os.pread(fd, max(os.fstat(fd).st_size, 1), 0).decode(errors="replace")
        except (OSError, ValueError):
            text = ""
        lines = text.strip().splitlines()
        if lines or time.monotonic() > deadline:
            return lines[-1].strip() if lines else "another process"
        time.sleep(0.02)


def _acquire(root: Path, path: Path, shared: bool, wait: bool) -> tuple[str, _Hold, int]:
    key = str(path.resolve())
    me = threading.get_ident()
    cond = _cond
    with cond:
        while True:
            hold = _holds.get(key)
            if hold is None:
                fh = open(path, "a+")  # readable for a shared lock, writable for an exclusive one
                hold = _holds[key] = _Hold(fh, shared, wait)
                hold.threads[me] += 1
                break
            if hold.pending and not hold.waits:  # another thread of ours is trying it at once: its answer is near
                cond.wait()
                continue
            if shared and hold.shared and not hold.pending:
                hold.threads[me] += 1
                return key, hold, me
            if not wait:
                raise _refused(root, _holder(hold.fh))
            if me in hold.threads:
                raise UserError(f"'{root}' is already held by this process ({_holder(hold.fh)}); waiting for it here "
                                f"would never end")
            cond.wait()  # another thread of this process holds it
    # this thread alone opened the file for this process: take the lock outside the registry's mutex (a wait may
    # be long); other threads wait for, or are refused by, the pending entry meanwhile
    granted = False
    try:
        if not _lockf(hold.fh, path, shared, wait):
            raise _refused(root, _holder(hold.fh))
        if not shared:
            hold.fh.seek(0)
            hold.fh.truncate()
        hold.fh.write(f"process {os.getpid()} on {socket.gethostname()}\n")
        hold.fh.flush()
        granted = True
    finally:
        with cond:
            if granted:
                hold.pending = False
            elif _holds.get(key) is hold:
                del _holds[key]
                hold.fh.close()  # the only descriptor of the file in this process
            cond.notify_all()
    return key, hold, me


def _lockf(fh: TextIO, path: Path, shared: bool, wait: bool) -> bool:
    """Lock the whole file; False when another process holds it and ``wait`` is off."""
    import fcntl
    try:
        fcntl.lockf(fh, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if wait else fcntl.LOCK_NB))
    except OSError as e:
        if e.errno in _BUSY and not wait:
            return False
        if e.errno in _UNSUPPORTED:
            raise _Unsupported(f"cannot lock '{path}': this file system does not support POSIX locks (on Lustre "
                               f"mount it with -o flock; on NFS run lockd); put the run directory on a file system "
                               f"that does") from None
        if e.errno == errno.EDEADLK:
            raise UserError(f"cannot wait for '{path}': its holder ({_holder(fh)}) waits for a lock this process "
                            f"holds; start them one after the other") from None
        raise
    return True


def _release(key: str, hold: _Hold, me: int) -> None:
    with _cond:
        if _holds.get(key) is not hold:  # a forked child's copy of its parent's hold: not this process's lock
            return
        hold.threads[me] -= 1
        if hold.threads[me] <= 0:
            del hold.threads[me]
        if hold.threads:
            return
        del _holds[key]
        try:
            hold.fh.close()  # drops the lock with the file's only descriptor in this process
        finally:
            _cond.notify_all()

