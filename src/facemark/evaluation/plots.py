"""Plots of evaluation results (matplotlib, loaded only when a plot is asked for)."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..core.errors import need
from ..io.files import atomic_write_bytes
from .metrics import auc, ced


def plot_ced(curves: dict[str, np.ndarray], path: str | Path, threshold: float = 0.1,
             title: str = "Cumulative error distribution", norm: str | None = None) -> None:
    """Write a PNG with one CED curve per entry of ``curves`` (label -> per-face NME)."""
    matplotlib = need("matplotlib", "plot", "plotting")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=100)
    colours = plt.get_cmap("tab10").colors
    for k, (label, errors) in enumerate(curves.items()):   # 10 colours, then the next line style
        x, y = ced(errors, threshold)
        ax.plot(x * 100, y, color=colours[k % 10], linestyle=("-", "--", ":")[k // 10 % 3],
                label=f"{label} (AUC {auc(errors, threshold):.3f})")
    ax.set_xlim(0, threshold * 100)
    ax.set_ylim(0, 1)
    ax.set_xlabel(f"NME ({norm}) %" if norm else "NME %")
    ax.set_ylabel("fraction of faces")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if len(curves) > 6:   # a long legend goes beside the axes instead of over the curves
        ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize="small")
    else:
        ax.legend(loc="lower right")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(Path(path), buf.getvalue())
