"""`yolo-compress prune model=best.pt pruning_ratio=0.3 ...`: prune a checkpoint, write it with its plan."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from yolo_compress import checkpoints, measure
from yolo_compress.commands.base import ArgumentError, refuse_overwrite, resolve, run_folder
from yolo_compress.device import select

# Recorded in the checkpoint's `pruning` entry: how it was pruned.
RECORDED = ("pruning_ratio", "importance_metric", "round_to", "global_pruning", "preserve_shortcuts", "shortcut_config",
            "prune_head", "head_ratio", "reconstruct", "pruning_method", "plan")


def run(args: dict[str, Any]) -> Path:
    """Prune ``model`` and write ``runs/prune/<name>/weights/pruned.pt`` plus plan tables and plot; never in place."""
    args = resolve("prune", args)
    if args["importance_metric"] == "taylor" and not args["data"]:
        raise ArgumentError("'importance_metric=taylor' needs 'data=<data.yaml>' (it ranks channels by loss gradients).")
    out_dir = run_folder(args)
    dst = out_dir / "weights" / "pruned.pt"
    refuse_overwrite(args["model"], dst)
    plan_rules = None
    if args["plan"]:
        from yolo_compress.pruning.plan import load_plan

        plan_rules = load_plan(args["plan"])
    return prune(args, out_dir, dst, plan_rules)


def prune(args: dict[str, Any], out_dir: Path, dst: Path, plan_rules: dict | None) -> Path:
    """Load, prune (a suggest plan, whole blocks, or channels), refit the layers that lost inputs (channel pruning with
    data; else re-estimate BatchNorm), save and report."""
    from ultralytics.utils import LOGGER

    from yolo_compress.pruning import adapters
    from yolo_compress.pruning.checkpoint import save_checkpoint
    from yolo_compress.pruning.importance import TAYLOR_BATCHES
    from yolo_compress.pruning.recalibrate import RECALIBRATION_BATCHES, recalibrate_bn, train_batches
    from yolo_compress.pruning.reconstruct import RECONSTRUCTION_BATCHES, reconstruct

    src, imgsz, batch = Path(str(args["model"])), args["imgsz"], args["batch"]
    model, ckpt = checkpoints.load(src, device=select(args["device"]))
    before = {"params": measure.count_params(model), "gflops": measure.gflops(model, imgsz)}
    # One read of the train split serves Taylor importance (its first batches), the refit and BN re-estimation.
    batches = train_batches(model, args["data"], imgsz, batch, RECALIBRATION_BATCHES) if args["data"] else []
    # The refit matches layers by name: channel pruning only (removed blocks shift the names).
    args["reconstruct"] = bool(batches) and args["reconstruct"] and args["pruning_method"] == "channel" \
        and plan_rules is None  # recorded in the checkpoint as done or not
    original = adapters.clean_copy(model) if args["reconstruct"] else None
    start = time.perf_counter()
    plan = surgery(model, args, plan_rules, batches[:TAYLOR_BATCHES] if args["importance_metric"] == "taylor" else None)
    seconds = time.perf_counter() - start
    # After a refit, plain BatchNorm re-estimation would undo it (reconstruct.match_batchnorm says why): the refit
    # matches the statistics itself.
    if original is not None:
        n = reconstruct(model, original, plan.groups, batches[:RECONSTRUCTION_BATCHES])
        LOGGER.info(f"{n} convolutions refitted to the unpruned outputs on {RECONSTRUCTION_BATCHES} x {batch} train "
                    f"images of {args['data']} ({time.perf_counter() - start - seconds:.0f}s)")
    elif batches:
        recalibrate_bn(model, batches)
        LOGGER.info(f"BatchNorm statistics re-estimated on {RECALIBRATION_BATCHES} x {batch} train images of {args['data']}")
    after = {"params": measure.count_params(model), "gflops": measure.gflops(model, imgsz)}
    out_dir.mkdir(parents=True, exist_ok=True)
    model.args = dict(ckpt.get("train_args") or {})
    save_checkpoint(model, dst, ckpt.get("train_args"),
                    {"pruning": {**{k: args[k] for k in RECORDED}, "source": str(src), "seconds": round(seconds, 2),
                                 **plan_meta(plan)}})
    files = plan.write(out_dir)
    LOGGER.info(plan.table())
    LOGGER.info(f"Pruned in {seconds:.1f}s: params {before['params']:,} -> {after['params']:,} "
                f"({1 - after['params'] / before['params']:.1%} fewer), GFLOPs@{imgsz} {before['gflops']:.2f} -> "
                f"{after['gflops']:.2f} ({1 - after['gflops'] / max(before['gflops'], 1e-9):.1%} fewer)")
    if args["data"]:
        for label, path in (("before", src), ("after", dst)):
            m = measure.evaluate(path, args["data"], imgsz, batch, args["device"])
            LOGGER.info(f"mAP50-95 {label} pruning (no fine-tuning): {m['map50_95']:.4f}")
    LOGGER.info(f"Results saved to {out_dir}: {dst.name}, {', '.join(f.name for f in files)}")
    return dst


def surgery(model, args: dict[str, Any], plan_rules: dict | None, taylor: list | None):
    """The pruning itself, in place: a suggest plan, whole blocks, or channels at one ratio; returns its plan."""
    from ultralytics.utils import LOGGER

    from yolo_compress.pruning.channel import ChannelPruner, ratio_for_flops
    from yolo_compress.pruning.suggest import apply_plan, prune_layers

    imgsz = args["imgsz"]
    if plan_rules is not None:
        return apply_plan(model, plan_rules, imgsz, args["importance_metric"], args["round_to"])
    if args["pruning_method"] == "layer":
        return prune_layers(model, imgsz, args["prune_blocks"], args["target_flops"], args["data"])

    def pruner(m, ratio: float) -> ChannelPruner:
        return ChannelPruner(m, ratio, args["importance_metric"], args["preserve_shortcuts"], args["shortcut_config"],
                             args["round_to"], args["global_pruning"], batches=taylor, prune_head=args["prune_head"],
                             head_ratio=args["head_ratio"])

    if args["target_flops"] is not None:  # the ratio that meets it; recorded in the checkpoint as pruning_ratio
        args["pruning_ratio"] = ratio_for_flops(model, args["target_flops"], imgsz, lambda m, r: pruner(m, r).prune())
        LOGGER.info(f"target_flops={args['target_flops']}: pruning_ratio {args['pruning_ratio']}")
    return pruner(model, args["pruning_ratio"]).prune()


def plan_meta(plan) -> dict[str, Any]:
    """What the checkpoint records of the plan: removed blocks and channel groups."""
    from yolo_compress.pruning.plan import LayerPlan

    if isinstance(plan, LayerPlan):
        return {"removed_blocks": [b["block"] for b in plan.blocks],
                "channel_groups": getattr(plan.channels, "groups", None)}
    return {"groups": plan.groups}
