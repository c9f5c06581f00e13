"""`yolo-compress data synth out=DIR ...`: write the synthetic dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from yolo_compress.cfg import DEFAULTS, ArgumentError, validate
from yolo_compress.data.synthetic import make_dataset

KEYS = ("out", "n_train", "n_val", "imgsz", "max_objects", "seed")


def data_command(args: dict[str, Any]) -> None:
    args = dict(args)
    action = args.pop("action", None)
    if action != "synth":
        raise ValueError(f"'yolo-compress data {action or ''}' is unknown. Use 'yolo-compress data synth out=DIR'.")
    args = {**{k: DEFAULTS[k] for k in KEYS}, "imgsz": 160, **validate(args, KEYS)}
    out = Path(args["out"])
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        # Writing into an existing set would leave its other images behind: the set would not be the one asked for.
        raise ArgumentError(f"'out={out}' already exists and is not empty; pass a new or empty folder.")
    print(f"Synthetic dataset written: {make_dataset(**args)}")
