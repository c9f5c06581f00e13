"""Pruning plans: what a pruning step removes, and their files.

Two kinds: a `PruningPlan` (channel pruning: per-group decisions, per-layer widths) and a `LayerPlan` (whole blocks
removed, optionally followed by a channel step). A `suggest` plan (blocks to remove, per-group ratios) is a YAML file
that ``prune plan=`` applies. Every writer of plan tables, plots and YAML lives here.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import yaml

from yolo_compress.cfg import ArgumentError, read_mapping

PLAN_KEYS = ("remove_blocks", "layer_ratios")


@dataclass
class PruningPlan:
    """Result of a pruning run: per-group decisions and per-layer channel counts (stock module names)."""

    groups: list[dict]
    layers: list[dict]
    params_before: int
    params_after: int

    def table(self) -> str:
        """Per-layer channels before -> after as a fixed-width text table."""
        rows = [f"{'layer':<32} {'type':<22} {'out before':>10} {'out after':>10} {'kept':>6}"]
        for r in self.layers:
            rows.append(f"{r['layer']:<32} {r['type']:<22} {r['before']:>10} {r['after']:>10} "
                        f"{r['after'] / r['before']:>6.0%}")
        rows.append(f"params {self.params_before:,} -> {self.params_after:,} "
                    f"({1 - self.params_after / self.params_before:.1%} fewer)")
        return "\n".join(rows)

    def write(self, out_dir: Path) -> list[Path]:
        """plan_layers.csv, plan_groups.csv and plan.png in out_dir."""
        return write_plan(self, out_dir)


@dataclass
class LayerPlan:
    """Blocks removed (in removal order) with the proxy distortion and FLOPs each cost alone."""

    blocks: list[dict]
    params_before: int
    params_after: int
    gflops_before: float
    gflops_after: float
    channels: object = None  # PruningPlan of a channel step applied after the block removal, if any

    def table(self) -> str:
        rows = [f"{'removed block':<28} {'type':<12} {'residual':>8} {'distortion':>11} {'GFLOPs saved':>13}"]
        rows += [f"{b['block']:<28} {b['type']:<12} {b['residual']!s:>8} {b['distortion']:>11.4g} "
                 f"{b['gflops_saved']:>13.4f}" for b in self.blocks]
        if self.channels is not None:
            rows.append(self.channels.table())
        rows.append(f"params {self.params_before:,} -> {self.params_after:,} "
                    f"({1 - self.params_after / self.params_before:.1%} fewer), GFLOPs {self.gflops_before:.3f} -> "
                    f"{self.gflops_after:.3f} ({self.gflops_after / self.gflops_before:.1%} kept)")
        return "\n".join(rows)

    def write(self, out_dir: Path) -> list[Path]:
        """removed_blocks.csv, plus the channel plan tables and plot when a channel step ran."""
        path = out_dir / "removed_blocks.csv"
        write_rows(self.blocks, path)
        files = [path]
        if self.channels is not None:
            files += write_plan(self.channels, out_dir)
        return files


def write_rows(rows: list[dict], path: Path) -> Path:
    """Rows of dicts as a CSV file with the first row's keys as header."""
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["block"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_plan(plan: PruningPlan, out_dir: Path) -> list[Path]:
    """Per-layer and per-group CSV tables plus a bar plot of channels before/after for every changed layer."""
    layers, groups = out_dir / "plan_layers.csv", out_dir / "plan_groups.csv"
    for path, rows, keys in ((layers, plan.layers, ("layer", "type", "before", "after")),
                             (groups, plan.groups, ("group", "type", "ratio", "before", "after"))):
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
    return [layers, groups, plot_plan(plan, out_dir / "plan.png")]


def plot_plan(plan: PruningPlan, path: Path) -> Path:
    """Grouped bars of output channels before and after, one pair per convolution."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = plan.layers
    x = range(len(rows))
    fig, ax = plt.subplots(figsize=(max(8.0, 0.12 * len(rows)), 4.5))
    ax.bar([i - 0.2 for i in x], [r["before"] for r in rows], width=0.4, label="before", color="#b0b0b0")
    ax.bar([i + 0.2 for i in x], [r["after"] for r in rows], width=0.4, label="after", color="#1f77b4")
    ax.set_xticks(list(x), [r["layer"].removeprefix("model.") for r in rows], rotation=90, fontsize=5)
    ax.set_ylabel("output channels")
    ax.set_title(f"params {plan.params_before:,} -> {plan.params_after:,}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path


def load_plan(path: str | Path) -> dict:
    """The plan in a ``suggest`` YAML (``remove_blocks``, ``layer_ratios``), given to ``prune plan=``."""
    data = read_mapping(path, "plan")
    if not any(k in data for k in PLAN_KEYS):
        raise ArgumentError(f"'plan={path}' holds no plan: valid plans have {' and/or '.join(PLAN_KEYS)} "
                            "(written by 'yolo-compress suggest').")
    ratios = data.get("layer_ratios") or {}
    bad = {k: v for k, v in ratios.items() if not isinstance(v, (int, float)) or not 0 <= v < 1}
    if bad:
        raise ArgumentError(f"'plan={path}' has invalid layer_ratios {bad}; valid: numbers in [0, 1).")
    return {"remove_blocks": list(data.get("remove_blocks") or []), "layer_ratios": dict(ratios)}


def write_plan_yaml(plan: dict, path: Path, header: str) -> Path:
    """The plan as the YAML that ``prune plan=`` applies; atomic."""
    body = {"remove_blocks": plan["remove_blocks"],
            "layer_ratios": plan["layer_ratios"], "tau": float(plan["tau"]), "gflops_kept": plan["gflops_kept"]}
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(header + yaml.safe_dump(body, sort_keys=False))
    tmp.replace(path)
    return path


def plan_header(src: Path, target: float, imgsz: int) -> str:
    """The comment lines on top of a suggest plan: how it was made and how to apply it."""
    return (f"# yolo-compress suggest model={src} target_flops={target} imgsz={imgsz}\n"
            f"# apply: yolo-compress prune model={src} plan=<this file> imgsz={imgsz}\n")
