"""Where the files of a run directory are (docs/method.md §1): imported by the loop and by the
report, so reading a finished run needs neither torch nor diffusers."""
from __future__ import annotations

from pathlib import Path


def cycle_path(root: Path, paradigm: str, arm: str, cycle: int) -> Path:
    """Where a cycle's files are; cycle 1 is shared by every paradigm and arm."""
    return Path(root) / "shared" / "cycle_01" if cycle == 1 else Path(root) / paradigm / arm / f"cycle_{cycle:02d}"
