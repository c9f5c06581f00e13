"""Channel sensitivity: one forward pass per masked group (zeroing BatchNorm weights, the previous way) against
several groups per pass (yolo_compress.pruning.sensitivity.masked_distortions), on the same candidates.

Usage: YOLO_OFFLINE=1 PYTHONPATH=. python benchmarks/sensitivity_batching.py [--imgsz 64 160 320] [--images 8]
Random-init yolo26n (timing does not depend on the weights), --images calibration images (`suggest` uses 8, the
tests 2), the first --groups channel groups of a 0.5-ratio plan; both ways timed alternately, twice per size.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn
from ultralytics.nn.tasks import DetectionModel

from yolo_compress.pruning import sensitivity
from yolo_compress.pruning.channel import ChannelPruner
from yolo_compress.pruning.adapters import clean_copy


def one_per_pass(model: nn.Module, images: torch.Tensor, candidates: list[dict]) -> list[float]:
    """The previous implementation: zero each group's BatchNorm weight and bias, one forward pass, restore."""
    norms = {n: m for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)}
    ref = sensitivity.reference(model, images)
    out = []
    for cand in candidates:
        saved = {b: (norms[b].weight.data.clone(), norms[b].bias.data.clone()) for b in cand}
        for b, idxs in cand.items():
            norms[b].weight.data[idxs] = 0
            norms[b].bias.data[idxs] = 0
        out.append(sensitivity.distortion(model, images, ref))
        for b, (w, bias) in saved.items():
            norms[b].weight.data.copy_(w)
            norms[b].bias.data.copy_(bias)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--imgsz", type=int, nargs="+", default=[64, 160, 320])
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--groups", type=int, default=28)
    a = ap.parse_args()
    torch.manual_seed(0)
    model = DetectionModel("yolo26n.yaml", nc=3, verbose=False).eval()
    plan = ChannelPruner(clean_copy(model), 0.5, "l1", round_to=8).prune()
    candidates = [g["removed"] for g in plan.groups if g["after"] != g["before"]][: a.groups]
    for imgsz in a.imgsz:
        images = torch.rand(a.images, 3, imgsz, imgsz)
        for loop in (1, 2):
            t0 = time.perf_counter()
            one_per_pass(model, images, candidates)
            t1 = time.perf_counter()
            sensitivity.masked_distortions(model, images, candidates)
            t2 = time.perf_counter()
            print(f"{a.images} images of {imgsz} px, loop {loop}: {len(candidates)} groups, one per pass {t1 - t0:.1f} s, "
                  f"batched {t2 - t1:.1f} s ({(t1 - t0) / (t2 - t1):.2f}x)")


if __name__ == "__main__":
    main()
