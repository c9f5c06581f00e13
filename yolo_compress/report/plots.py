"""Report plots: accuracy vs latency of all artifacts, and per-layer channels before/after compression."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path)
    _plt().close(fig)
    return path


LABEL_OFFSETS = ((6, 6), (6, -24), (-8, 6), (-8, -24))  # points from the marker: above/below, right/left


def _place_labels(ax, labels: list[str], xs: list[float], ys: list[float], areas: list[float]) -> None:
    """Each label at the first offset around its point where it covers no marker and no label placed before it.

    Compressed stages often sit on top of each other (a pruned model and its INT8 copy have nearly the same
    latency and mAP), and labels at one fixed offset then print over each other.
    """
    from matplotlib.transforms import Bbox

    renderer = ax.figure.canvas.get_renderer()
    px_per_pt = ax.figure.dpi / 72
    placed = []
    for x, y, area in zip(xs, ys, areas):  # scatter sizes are marker areas in points^2
        cx, cy = ax.transData.transform((x, y))
        r = area**0.5 / 2 * px_per_pt
        placed.append(Bbox.from_extents(cx - r, cy - r, cx + r, cy + r))
    for label, x, y in zip(labels, xs, ys):
        for dx, dy in LABEL_OFFSETS:
            text = ax.annotate(label, (x, y), textcoords="offset points", xytext=(dx, dy), fontsize=8,
                               ha="left" if dx > 0 else "right")
            box = text.get_window_extent(renderer)
            if (dx, dy) == LABEL_OFFSETS[-1] or not any(box.overlaps(b) for b in placed):
                break
            text.remove()
        placed.append(box)


def accuracy_vs_latency(rows: list[dict[str, Any]], path: Path) -> Path:
    """One labelled point per artifact; up and to the left is better."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    xs, ys = [r["latency_ms"] for r in rows], [r["map50_95"] for r in rows]
    ax.plot(xs, ys, color="0.75", zorder=1)
    sizes = [max(30.0, r["size_mb"] * 25) for r in rows]
    ax.scatter(xs, ys, s=sizes, c=range(len(rows)), cmap="viridis", zorder=2)
    ax.margins(0.15, 0.15)
    ax.autoscale_view()
    _place_labels(ax, [f"{r['stage']}\n{r['size_mb']:.1f} MB" for r in rows], xs, ys, sizes)
    ax.set_xlabel("ONNX Runtime CPU latency (ms, median)")
    ax.set_ylabel("mAP50-95")
    ax.set_title("Accuracy vs latency (marker area ~ file size)")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def conv_channels(model: nn.Module) -> dict[str, int]:
    """Output channels of every convolution, by module name (names survive pruning, shapes do not)."""
    return {name: m.out_channels for name, m in model.named_modules() if isinstance(m, nn.Conv2d)}


def channels_before_after(before: nn.Module, after: nn.Module, path: Path) -> Path:
    """Bars of each convolution's output channels in the reference model and in the compressed one."""
    plt = _plt()
    a, b = conv_channels(before), conv_channels(after)
    names = [n for n in a if n in b]
    fig, ax = plt.subplots(figsize=(max(8, len(names) * 0.12), 4.5), dpi=120)
    x = range(len(names))
    ax.bar(x, [a[n] for n in names], color="0.8", label=f"before ({sum(a.values()):,} channels)")
    ax.bar(x, [b[n] for n in names], color="tab:blue", label=f"after ({sum(b[n] for n in names):,} channels)")
    ax.set_xticks(list(x)[:: max(1, len(names) // 30)])
    ax.set_xticklabels([names[i] for i in range(0, len(names), max(1, len(names) // 30))], rotation=90, fontsize=6)
    ax.set_ylabel("output channels")
    ax.set_title("Convolution output channels per layer")
    ax.legend()
    return _save(fig, path)
