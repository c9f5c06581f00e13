"""`yolo-compress pipeline RECIPE [model=...] [data=...] [imgsz=...] [epochs=...] [name=...] [max_map_drop=...]`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from yolo_compress.commands.base import resolve


def run(args: dict[str, Any]) -> Path:
    from yolo_compress.pipeline import recipe as recipes
    from yolo_compress.pipeline.compare import run_and_compare

    args = resolve("pipeline", args)
    name, runs, drop = args.pop("recipe"), args.pop("runs"), args.pop("max_map_drop")
    overrides = {k: v for k, v in args.items() if v is not None}  # unset: the recipe's own value
    run_dir, _ = run_and_compare(recipes.load(name, overrides), runs, drop)
    return run_dir
