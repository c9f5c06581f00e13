"""`yolo-compress report MODEL|RUN_DIR [output=report.md|.html|.txt] [imgsz=640]`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from yolo_compress.commands.base import resolve


def run(args: dict[str, Any]) -> Path:
    from yolo_compress.report.build import build

    args = resolve("report", args)
    path = build(args["model"], args["output"], args["imgsz"])
    print(f"Report written: {path}")
    return path
