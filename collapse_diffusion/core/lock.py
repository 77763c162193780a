"""Who may work on a run directory at once: advisory locks (flock) that go with their process,
however it ends (kill -9 included).

- RUN/.lock, **exclusive**: a whole-run command (`run`, `init`, `phase`) holds the directory alone.
  A second one (a user starting `make study` twice, a requeued job overlapping its predecessor) is
  refused with the holder's PID, or waits for it with ``wait``.
- RUN/.lock, **shared**: commands that work on one chain (`run --only`, `cycle`, `select` in a
  run) hold it together, so chains run side by side (`make -j`, a SLURM array, several GPUs) while
  a whole-run command is kept out.
- a chain's folder (RUN/<paradigm>/<arm>/.lock) and the shared cycle 1 (RUN/shared/.lock),
  **exclusive**: one process per chain; a chain that needs cycle 1 while another process makes it
  waits for it and then finds it done.
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


@contextmanager
def _held(root: Path, shared: bool, wait: bool, name: str = LOCK, keep: bool = False) -> Iterator[None]:
    import fcntl
    fresh = not root.exists() and not keep
    root.mkdir(parents=True, exist_ok=True)
    fh = open(root / name, "a+")
    try:
        try:
            fcntl.flock(fh, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip().splitlines()
            holder = holder[-1] if holder else "another process"
            raise UserError(f"'{root}' is in use by {holder}; wait for it to end, or pass --wait to start when "
                            f"it does") from None
        if not shared:
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
