"""`yolo-compress prune model=best.pt pruning_ratio=0.3 ...`: prune a checkpoint, write it with its plan."""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from ultralytics.utils import LOGGER
from ultralytics.utils.files import increment_path

from yolo_compress import checkpoints, measure
from yolo_compress.cfg import DEFAULTS, ArgumentError, validate
from yolo_compress.device import select
from yolo_compress.pruning.channel import ChannelPruner, PruningPlan
from yolo_compress.pruning.checkpoint import save_checkpoint
from yolo_compress.pruning.layer import LayerPlan
from yolo_compress.pruning.suggest import load_plan, prune_layers
from yolo_compress.pruning.technique import TAYLOR_BATCHES

KEYS = ("model", "pruning_ratio", "importance_metric", "round_to", "global_pruning", "preserve_shortcuts",
        "shortcut_config", "data", "imgsz", "batch", "project", "name", "exist_ok", "device", "pruning_method",
        "prune_blocks", "target_flops", "prune_head")
ALIASES = {"global": "global_pruning"}
RECALIBRATION_BATCHES = 8


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


def train_batches(model: nn.Module, data: str, imgsz: int, batch: int, n_batches: int) -> list[dict]:
    """A few shuffled batches of the train split, letterboxed as in val (no augmentation). The model gets a
    loss-ready ``args`` for Taylor importance (v8DetectionLoss reads box/cls/dfl gains as attributes)."""
    from ultralytics.cfg import get_cfg
    from ultralytics.data import build_dataloader, build_yolo_dataset
    from ultralytics.data.utils import check_det_dataset

    cfg = get_cfg(overrides={"imgsz": imgsz, "batch": batch, "data": data, "augment": False, "mosaic": 0.0})
    info = check_det_dataset(data)
    dataset = build_yolo_dataset(cfg, info["train"], batch, info, mode="val", stride=int(model.stride.max()))
    loader = build_dataloader(dataset, batch, workers=0, shuffle=True)
    model.args = cfg
    model.criterion = None
    batches = []
    for b in loader:
        batches.append(b)
        if len(batches) == n_batches:
            break
    return batches


@torch.no_grad()
def recalibrate_bn(model: nn.Module, batches: list[dict]) -> None:
    """Re-estimate every BatchNorm's running statistics on the user's images, with torch's ``update_bn``.

    Removing channels changes what the following BatchNorms see: a channel whose gamma is ~0 still sends a constant,
    SiLU(beta), that the next layer's running mean includes. With those stale statistics a pruned model evaluates
    far below what it computes in training mode, until fine-tuning re-estimates them.
    """
    from torch.optim.swa_utils import update_bn

    device = next(model.parameters()).device
    update_bn(([b["img"].to(device).float() / 255] for b in batches), model)


def check_args(args: dict[str, Any]) -> dict[str, Any]:
    """The prune arguments with aliases resolved, cast and checked (also used to check a pipeline's stages early)."""
    return validate({ALIASES.get(k, k): v for k, v in args.items()}, KEYS)


def prune_command(args: dict[str, Any]) -> Path:
    """Prune ``model`` and write ``runs/prune/<name>/weights/pruned.pt`` plus plan tables and plot; never in place."""
    args = check_args(args)
    if not args.get("model"):
        raise ArgumentError("'model' is required, e.g. 'yolo-compress prune model=best.pt pruning_ratio=0.3'.")
    src = Path(str(args["model"]))
    if src.suffix != ".pt":
        raise ArgumentError(f"'model={src}' is invalid. Valid 'model' values are .pt checkpoints.")
    if not src.is_file():
        raise FileNotFoundError(f"'model={src}' does not exist.")
    opt = {k: args.get(k, DEFAULTS[k]) for k in ("pruning_ratio", "importance_metric", "round_to", "global_pruning",
                                                  "preserve_shortcuts", "shortcut_config", "prune_head")}
    imgsz = int(args.get("imgsz", 640))
    if opt["importance_metric"] == "taylor" and not args.get("data"):
        raise ArgumentError("'importance_metric=taylor' needs 'data=<data.yaml>' (it ranks channels by loss gradients).")
    out_dir = increment_path(Path(args.get("project") or "runs/prune") / str(args.get("name") or "prune"),
                             exist_ok=bool(args.get("exist_ok", False)))
    dst = out_dir / "weights" / "pruned.pt"
    if dst.resolve() == src.resolve():
        raise ArgumentError(f"'model={src}' would be overwritten by the pruned model; choose another project/name.")

    model, ckpt = checkpoints.load(src, device=select(args.get("device")))
    before = {"params": measure.count_params(model), "gflops": measure.gflops(model, imgsz)}
    batch = int(args.get("batch") or 16)
    # One read of the train split serves both Taylor importance (its first batches) and BN re-estimation.
    batches = train_batches(model, args["data"], imgsz, batch, RECALIBRATION_BATCHES) if args.get("data") else []
    taylor = batches[:TAYLOR_BATCHES] if opt["importance_metric"] == "taylor" else None
    start = time.perf_counter()
    if args.get("pruning_method") == "layer" or load_plan(opt["shortcut_config"]) is not None:
        plan = prune_layers(model, args, imgsz)
    else:
        plan = ChannelPruner(model, opt["pruning_ratio"], opt["importance_metric"], opt["preserve_shortcuts"],
                             opt["shortcut_config"], opt["round_to"], opt["global_pruning"], batches=taylor,
                             prune_head=opt["prune_head"]).prune()
    seconds = time.perf_counter() - start
    if batches:
        recalibrate_bn(model, batches)
        LOGGER.info(f"BatchNorm statistics re-estimated on {RECALIBRATION_BATCHES} x {batch} train images of {args['data']}")
    after = {"params": measure.count_params(model), "gflops": measure.gflops(model, imgsz)}
    out_dir.mkdir(parents=True, exist_ok=True)
    model.args = dict(ckpt.get("train_args") or {})
    layered = isinstance(plan, LayerPlan)
    meta = {"removed_blocks": [b["block"] for b in plan.blocks],
            "channel_groups": getattr(plan.channels, "groups", None)} if layered else {"groups": plan.groups}
    save_checkpoint(model, dst, ckpt.get("train_args"),
                    {"pruning": {**opt, "source": str(src), "seconds": round(seconds, 2), **meta}})
    files = plan.write(out_dir) if layered else write_plan(plan, out_dir)
    LOGGER.info(plan.table())
    LOGGER.info(f"Pruned in {seconds:.1f}s: params {before['params']:,} -> {after['params']:,} "
                f"({1 - after['params'] / before['params']:.1%} fewer), GFLOPs@{imgsz} {before['gflops']:.2f} -> "
                f"{after['gflops']:.2f} ({1 - after['gflops'] / max(before['gflops'], 1e-9):.1%} fewer)")
    if args.get("data"):
        for label, path in (("before", src), ("after", dst)):
            m = measure.evaluate(path, args["data"], imgsz, batch, args.get("device"))
            LOGGER.info(f"mAP50-95 {label} pruning (no fine-tuning): {m['map50_95']:.4f}")
    LOGGER.info(f"Results saved to {out_dir}: {dst.name}, {', '.join(f.name for f in files)}")
    return dst
