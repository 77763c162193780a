"""Randomness as an argument: every stage's seed derives from (study seed, cycle, stage, arm).

Arms share the training and sampling seeds of a cycle (common random numbers), so an arm's numbers
do not depend on which other arms run.
"""
from __future__ import annotations

import zlib

import numpy as np


def derive_seed(seed: int, cycle: int, stage: str, arm: str = "") -> int:
    """Seed of one (cycle, stage, arm): arms share training and sampling seeds (common random numbers)."""
    return int(np.random.SeedSequence([seed, cycle, zlib.crc32(stage.encode()), zlib.crc32(arm.encode())])
               .generate_state(1)[0])
