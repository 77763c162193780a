"""Every path of a run directory (docs/method.md §1). The loop writes through it and the report
reads through it, so reading a finished run needs neither torch nor diffusers. (Files a single
command writes beside its own output, such as ``OUT.png`` next to ``OUT.npz``, are named there.)

    RUN/config.yaml              the resolved config (a different config is refused)
    RUN/real.npz                 the real pool: R = D_1 in the first N rows, unused real images after
    RUN/extractor_data.npz       labelled real images the FD classifier trains on
    RUN/extractor/               the trained FD classifier (a phase diagram's cells link to RUN's)
    RUN/shared/cycle_01/         D_1, its model and samples: shared by every paradigm and arm
    RUN/<paradigm>/<arm>/cycle_NN/   one cycle of one arm (CycleFiles)
    RUN/metrics.jsonl            one row per paradigm, arm and cycle (rows.py); written at the end
    RUN/report.md, RUN/plots/    the report
    RUN/seed_<s>/                with two or more seeds: one single-seed run directory per seed
    RUN/cells/<cell>/            a phase diagram: one single-seed run directory per cell
    RUN/phase.jsonl, RUN/phase.md
    RUN/.lock, RUN/.<part>.lock  who works on the run and on each chain (core/lock.py, loop/commands.py)
    .manifest.jsonl              beside finished files: their sizes and checksums (core/io.py seal)

A cycle's folder holds train.npz, selection.json, model/, train_log.jsonl, samples.npz and .png,
metrics.json, nn.npz and timings.jsonl (:class:`CycleFiles`, in stage order).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MODEL, CHECKPOINT = "model", "checkpoint"


def is_model(path: Path) -> bool:
    """A finished model folder: a DDPMPipeline folder, or (runs before it) a bare UNet folder."""
    return (Path(path) / "model_index.json").is_file() or (Path(path) / "config.json").is_file()


@dataclass(frozen=True)
class CycleFiles:
    """The files of one cycle of one arm, in stage order."""
    dir: Path

    @property
    def train(self) -> Path:          # D_n
        return self.dir / "train.npz"

    @property
    def holdout(self) -> Path:        # non-members of D_n: selected with it, held out (cycle >= 2)
        return self.dir / "holdout.npz"

    @property
    def selection(self) -> Path:      # how D_n was selected from the previous cycle (cycle >= 2)
        return self.dir / "selection.json"

    @property
    def model(self) -> Path:          # a DDPMPipeline folder
        return self.dir / MODEL

    @property
    def train_log(self) -> Path:
        return self.dir / "train_log.jsonl"

    @property
    def samples(self) -> Path:        # G_n: r*N candidates first, then evaluation images
        return self.dir / "samples.npz"

    @property
    def samples_grid(self) -> Path:
        return self.dir / "samples.png"

    @property
    def metrics(self) -> Path:        # evaluate.CycleMetrics
        return self.dir / "metrics.json"

    @property
    def nn(self) -> Path:             # per-sample ratios, NN indices and lineage roots
        return self.dir / "nn.npz"

    @property
    def timings(self) -> Path:
        return self.dir / "timings.jsonl"


@dataclass(frozen=True)
class RunLayout:
    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def real(self) -> Path:
        return self.root / "real.npz"

    @property
    def extractor_data(self) -> Path:
        return self.root / "extractor_data.npz"

    @property
    def extractor(self) -> Path:
        return self.root / "extractor"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def report(self) -> Path:
        return self.root / "report.md"

    @property
    def plots(self) -> Path:
        return self.root / "plots"

    @property
    def phase_rows(self) -> Path:
        return self.root / "phase.jsonl"

    @property
    def phase_report(self) -> Path:
        return self.root / "phase.md"

    def seed(self, seed: int) -> "RunLayout":
        return RunLayout(self.root / f"seed_{seed}")

    def cell(self, name: str) -> "RunLayout":
        return RunLayout(self.root / "cells" / name)

    def cycle(self, paradigm: str, arm: str, cycle: int) -> CycleFiles:
        """Cycle 1 is shared by every paradigm and arm."""
        d = self.root / "shared" / "cycle_01" if cycle == 1 else self.root / paradigm / arm / f"cycle_{cycle:02d}"
        return CycleFiles(d)

    @property
    def shared(self) -> CycleFiles:
        """Cycle 1: real D_1, its model and samples."""
        return self.cycle("", "", 1)

    def timing_files(self) -> list[Path]:
        return sorted(self.root.rglob("timings.jsonl"))

