"""How much of a model's compute sits in its Detect head, which channel pruning keeps whole (issue #17).

A pruned model's speed-up is bounded by what it did not prune: the head keeps its widths (as in Torch-Pruning's plain
recipe), so its share grows as the rest shrinks. Prints, per checkpoint, the FLOPs of one forward pass (torch's
FlopCounterMode, batch 1) in all and in the Detect head. Ultralytics' own GFLOPs figure has no per-module split.

Usage: python benchmarks/head_share.py A.pt [B.pt ...] [imgsz=320]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import key_value_args  # noqa: E402


def head_share(pt: str, imgsz: int) -> tuple[float, float]:
    """(GFLOPs in all, GFLOPs of the Detect head) of `pt` at `imgsz` (multiply-adds counted twice, as torch does)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from yolo_compress import measure

    model = measure.load_model(pt).float().eval()
    head = f"model.{len(model.model) - 1}"  # Ultralytics puts the Detect head last
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, 3, imgsz, imgsz))
    counts = counter.get_flop_counts()
    in_head = next(v for k, v in counts.items() if k.endswith(head))
    return sum(counts["Global"].values()) / 1e9, sum(in_head.values()) / 1e9


def main(pts: list[str], imgsz: int = 320) -> None:
    print(f"`python benchmarks/head_share.py {' '.join(pts)} imgsz={imgsz}`\n")
    print("| checkpoint | GFLOPs (x2 MAC) | Detect head | head share |\n|---|---:|---:|---:|")
    for pt in pts:
        total, head = head_share(pt, imgsz)
        print(f"| {pt} | {total:.3f} | {head:.3f} | {head / total:.0%} |")


if __name__ == "__main__":
    main([a for a in sys.argv[1:] if "=" not in a], **key_value_args([a for a in sys.argv[1:] if "=" in a]))
