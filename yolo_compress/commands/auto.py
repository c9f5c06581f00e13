"""`yolo-compress auto model=best.pt data=data.yaml target_flops=0.5 [max_map_drop=0.01] [epochs=10]`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from yolo_compress.commands.base import ArgumentError, resolve


def check(args: dict[str, Any]) -> dict[str, Any]:
    """auto's arguments checked; exactly one target; the training settings gathered under `train`."""
    from yolo_compress import checkpoints
    from yolo_compress.pipeline.auto import TRAIN_KEYS

    args = resolve("auto", args)
    if (args["target_flops"] is None) == (args["target_latency_ms"] is None):
        raise ArgumentError("auto needs exactly one target: 'target_flops=F' (fraction of GFLOPs to keep, e.g. 0.5) "
                            "or 'target_latency_ms=MS' (ONNX Runtime CPU latency to meet, e.g. 8.0).")
    checkpoints.load_dict(args["model"])  # loads under the trust rules before any work
    args["train"] = {k: v for k in TRAIN_KEYS if (v := args.pop(k)) is not None}  # unset: Ultralytics' default
    return args


def run(args: dict[str, Any]) -> Path:
    """The chosen artifact; exit status 1 when no candidate is within the mAP budget."""
    from yolo_compress.pipeline.auto import auto

    chosen = auto(check(args))
    if chosen is None:
        raise SystemExit(1)
    return chosen
