"""`yolo-compress data synth out=DIR ...`: write the synthetic dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from yolo_compress.commands.base import ArgumentError, resolve


def run(args: dict[str, Any]) -> Path:
    from yolo_compress.data.synthetic import make_dataset

    args = resolve("data", args)
    del args["action"]  # synth, the only one
    out = Path(args["out"])
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        # Writing into an existing set would leave its other images behind: the set would not be the one asked for.
        raise ArgumentError(f"'out={out}' already exists and is not empty; pass a new or empty folder.")
    path = make_dataset(**args)
    print(f"Synthetic dataset written: {path}")
    return path
