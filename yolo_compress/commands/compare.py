"""`yolo-compress compare A B [data=data.yaml] [imgsz=640] [runs=50] [json=out.json]`."""

from __future__ import annotations

from typing import Any

from yolo_compress.commands.analyze import write_json
from yolo_compress.commands.base import ArgumentError, check_path, command_spec, resolve


def run(args: dict[str, Any]) -> dict:
    from yolo_compress.analysis import compare, format_comparison

    args = resolve("compare", args)
    models = args["models"]
    if len(models) != 2:
        raise ArgumentError(f"'compare' takes exactly two models, got {len(models)}: 'yolo-compress compare a.pt b.pt'.")
    for path in models:
        check_path("models", path, command_spec("analyze")["model"])  # each one is what analyze accepts
    c = compare(models[0], models[1], args["data"], args["imgsz"], args["runs"])
    print(format_comparison(c))
    write_json(c, args["json"])
    return c
