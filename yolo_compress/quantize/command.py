"""`yolo-compress quantize model=best.pt data=data.yaml [int8=True] [half=True] [dynamic=True] ...`."""

from __future__ import annotations

from typing import Any

from yolo_compress.cfg import DEFAULTS, validate

KEYS = ("format", "int8", "half", "dynamic", "calibration", "per_channel", "fraction", "debug", "val", "output", "runs",
        "layout")


def check_args(args: dict[str, Any]) -> dict[str, Any]:
    """The quantize arguments cast and checked (also used to check a pipeline's stages early)."""
    return validate(args, (*KEYS, "model", "data", "imgsz", "project", "name", "exist_ok"))


def quantize_command(args: dict[str, Any]) -> None:
    """Validate, then run yolo_compress.quantize.quantize; `model`, `data` and `imgsz` are checked there."""
    from yolo_compress.quantize import quantize

    args = check_args(args)
    if "model" not in args:
        raise ValueError("'model' is required: yolo-compress quantize model=best.pt data=data.yaml")
    quantize(**{**{k: DEFAULTS[k] for k in KEYS}, **args})
