"""One process at a time on a run directory: an exclusive advisory lock (flock) on RUN/.lock.

A second `run`, `cycle`, `init`, `phase` or `select` on the same directory (a user starting
`make study` twice, a requeued job overlapping its predecessor) is refused with the holder's PID,
or waits for it with ``wait``. The lock goes with the process, however it ends (kill -9 included).
"""
from __future__ import annotations

import os
import shutil
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import UserError

LOCK = ".lock"


@contextmanager
def exclusive(root: str | Path, wait: bool = False) -> Iterator[None]:
    """Hold RUN/.lock for the body; a directory this call created is removed again when the body
    fails with a UserError (a refused run leaves nothing behind)."""
    import fcntl
    root = Path(root)
    fresh = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    fh = open(root / LOCK, "a+")
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise UserError(f"'{root}' is in use by {holder}; wait for it to end, or pass --wait to start when "
                            f"it does") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"process {os.getpid()} on {socket.gethostname()}\n")
        fh.flush()
        try:
            yield
        except UserError:
            if fresh:
                shutil.rmtree(root, ignore_errors=True)
            raise
    finally:
        fh.close()
