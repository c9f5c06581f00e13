"""`yolo-compress suggest model=best.pt data=data.yaml target_flops=0.5`: a pruning plan for `prune plan=`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from yolo_compress.commands.base import resolve, run_folder


def run(args: dict[str, Any]) -> Path:
    """Sensitivity of every block and channel group, then the plan: runs/suggest/<name>/plan.yaml (+ CSVs, plots)."""
    from ultralytics.utils import LOGGER

    from yolo_compress.pruning.plan import plan_header
    from yolo_compress.pruning.suggest import load_input, save_suggestion, suggest

    args = resolve("suggest", args)
    src, target, imgsz = Path(str(args["model"])), args["target_flops"], args["imgsz"]
    model, images = load_input(src, args["data"], imgsz, args["device"])
    start = time.perf_counter()
    plan, blocks, channels = suggest(model, images, target, imgsz, args["importance_metric"], args["round_to"])
    LOGGER.info(f"Plan for target_flops={target:.0%} computed in {time.perf_counter() - start:.0f}s")
    out_dir = run_folder(args)
    path = save_suggestion(plan, blocks, channels, out_dir, plan_header(src, target, imgsz))
    if args["data"] and args["max_map_drop"] is not None:
        check_map(model, plan, args, out_dir)
    return path


def check_map(model, plan: dict, args: dict[str, Any], out_dir: Path) -> None:
    """mAP of the plan applied without fine-tuning against max_map_drop (an upper bound on the drop after it)."""
    from ultralytics.utils import LOGGER

    from yolo_compress import measure
    from yolo_compress.pruning.adapters import clean_copy
    from yolo_compress.pruning.checkpoint import save_checkpoint
    from yolo_compress.pruning.suggest import apply_plan

    imgsz, batch, device = args["imgsz"], args["batch"], args["device"]
    pruned = clean_copy(model)
    apply_plan(pruned, plan, imgsz, args["importance_metric"], args["round_to"])
    trial = save_checkpoint(pruned, out_dir / "plan_trial.pt")
    try:
        before = measure.evaluate(args["model"], args["data"], imgsz, batch, device)["map50_95"]
        after = measure.evaluate(trial, args["data"], imgsz, batch, device)["map50_95"]
    finally:
        trial.unlink()
    drop = before - after
    level = LOGGER.info if drop <= args["max_map_drop"] else LOGGER.warning
    level(f"mAP50-95 {before:.4f} -> {after:.4f} with the plan before fine-tuning (drop {drop:.4f}, "
          f"max_map_drop={args['max_map_drop']}); fine-tuning recovers part of it")
