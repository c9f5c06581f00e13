"""`yolo-compress quantize model=best.pt data=data.yaml [int8=True] [half=True] [dynamic=True] ...`."""

from __future__ import annotations

from typing import Any

from yolo_compress.commands.base import resolve


def run(args: dict[str, Any]) -> dict[str, Any]:
    from yolo_compress.quantize import quantize

    return quantize(**resolve("quantize", args))
