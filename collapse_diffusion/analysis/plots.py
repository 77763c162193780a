"""Figures shared by the report and the notebook (both only read run files)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np

from ..core.io import atomic_path


def _show(ax, image: np.ndarray) -> None:
    """Draw one uint8 (C, H, W) image without axes."""
    img = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
    ax.imshow(img, cmap="gray" if image.shape[0] == 1 else None, vmin=0, vmax=255, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def savefig(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def nn_pairs_figure(gen: np.ndarray, ref: np.ndarray, ratios: np.ndarray, nn_index: np.ndarray,
                    count: int = 10,
                    title: str = "most memorized generated images (top) and their nearest training image"):
    """The ``count`` generated images with the lowest NN1/NN2 ratio above their nearest training image."""
    order = np.argsort(ratios, kind="stable")[:count]
    fig, axes = plt.subplots(2, max(len(order), 1), figsize=(1.3 * max(len(order), 1), 3.0), squeeze=False)
    for col, i in enumerate(order):
        _show(axes[0, col], gen[i])
        _show(axes[1, col], ref[nn_index[i, 0]])
        axes[0, col].set_title(f"r={ratios[i]:.2f}", fontsize=8)
    axes[0, 0].set_ylabel("generated", fontsize=8)
    axes[1, 0].set_ylabel("nearest train", fontsize=8)
    fig.suptitle(title, fontsize=9)
    return fig


def metric_lines(ax, cycles_by_arm: dict[str, Sequence[int]], values_by_arm: dict[str, Sequence[float]],
                 intervals_by_arm: dict[str, Sequence[Sequence[float]]] | None = None, ylabel: str = "",
                 colours: dict[str, str] | None = None) -> None:
    """One line per arm of a metric against cycle (integer ticks), with a shaded interval where given."""
    from matplotlib.ticker import MaxNLocator
    for arm, cycles in cycles_by_arm.items():
        line, = ax.plot(cycles, values_by_arm[arm], marker="o", label=arm, color=(colours or {}).get(arm))
        if intervals_by_arm and arm in intervals_by_arm:
            lo, hi = np.asarray(intervals_by_arm[arm], dtype=float).T
            ax.fill_between(cycles, lo, hi, alpha=0.2, color=line.get_color())
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("cycle")
    ax.set_ylabel(ylabel, fontsize=8)
    ax.grid(alpha=0.3)
