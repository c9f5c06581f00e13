"""`yolo-compress data synth out=DIR ...`: write the synthetic dataset."""

from __future__ import annotations

from typing import Any

from yolo_compress.cfg import DEFAULTS, validate
from yolo_compress.data.synthetic import make_dataset

KEYS = ("out", "n_train", "n_val", "imgsz", "max_objects", "seed")


def data_command(args: dict[str, Any]) -> None:
    args = dict(args)
    action = args.pop("action", None)
    if action != "synth":
        raise ValueError(f"'yolo-compress data {action or ''}' is unknown. Use 'yolo-compress data synth out=DIR'.")
    args = {**{k: DEFAULTS[k] for k in KEYS}, "imgsz": 160, **validate(args, KEYS)}
    print(f"Synthetic dataset written: {make_dataset(**args)}")
