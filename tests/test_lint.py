"""The lint configuration in pyproject.toml (ruff: pyflakes, pycodestyle at 120 columns, import
order) holds for the whole repository, so a `noqa` marker means something."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# the layer test writes a probe module into the package for a moment: never beside the lint
pytestmark = pytest.mark.xdist_group("package-tree")


def test_ruff_is_clean():
    r = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", str(ROOT)], capture_output=True,
                       text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-1000:]
