"""`yolo-compress analyze MODEL [threshold=1e-3] [imgsz=640] [plot=bn.png] [json=out.json]`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from yolo_compress.commands.base import resolve


def write_json(obj: dict, path: str | None) -> None:
    """The result as JSON, when json= asked for it."""
    if path:
        Path(path).write_text(json.dumps(obj, indent=2, default=str))


def run(args: dict[str, Any]) -> dict:
    from yolo_compress import measure
    from yolo_compress.analysis import analyze, format_analysis, plot_bn_histogram

    args = resolve("analyze", args)
    r = analyze(args["model"], args["threshold"], args["bn_threshold"], args["imgsz"])
    print(format_analysis(r))
    if args["plot"] and not measure.is_onnx(args["model"]):
        model = measure.load_model(args["model"])
        print(f"BN-gamma histogram: {plot_bn_histogram({Path(args['model']).name: model}, args['plot'])}")
    write_json(r, args["json"])
    return r
