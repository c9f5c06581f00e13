"""`yolo-compress suggest`: per-layer channel ratios and blocks to remove that meet a FLOPs target.

Rule: candidates (a block to remove, or a channel group at one of the probed ratios) are ranked by their distortion
when pruned alone (see ``sensitivity``) and taken in that order up to a threshold ``tau``; each group gets the
largest ratio taken. Equal marginal distortion is the least-predicted-loss allocation when distortions add up; the
number of candidates taken is found by bisection on the GFLOPs measured after really applying the plan to a copy of
the model, so the plan lands on the target within the granularity of one candidate.

``target_flops`` is the fraction of GFLOPs KEPT (0.5 = half the FLOPs of the input model).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from ultralytics.utils import LOGGER

from yolo_compress import checkpoints, measure
from yolo_compress.cfg import ArgumentError
from yolo_compress.device import select
from yolo_compress.measure import count_params
from yolo_compress.pruning import sensitivity
from yolo_compress.pruning.adapters import clean_copy
from yolo_compress.pruning.channel import ROUND_TO, ChannelPruner
from yolo_compress.pruning.layer import LayerPruner, rename_map
from yolo_compress.pruning.plan import LayerPlan, write_plan_yaml


def apply_plan(model: nn.Module, plan: dict, imgsz: int, importance_metric: str, round_to: int) -> LayerPlan:
    """Remove the plan's blocks, then prune each channel group at its ratio (names of the unpruned model)."""
    before = {m: n for n, m in model.named_modules()}
    params, flops = count_params(model), measure.gflops(model, imgsz)
    result = LayerPruner(model, imgsz).prune(names=plan["remove_blocks"])
    renamed = rename_map(before, model)
    ratios = {}
    for group, ratio in plan["layer_ratios"].items():
        base, _, part = group.partition("[")
        if base in renamed and ratio > 0:
            ratios[renamed[base] + (f"[{part}" if part else "")] = ratio
    if ratios:
        result.channels = ChannelPruner(model, 0.0, importance_metric, round_to=round_to,
                                        layer_ratios=ratios).prune()
    result.params_before, result.gflops_before = params, flops
    result.params_after, result.gflops_after = count_params(model), measure.gflops(model, imgsz)
    return result


def prune_layers(model: nn.Module, imgsz: int, prune_blocks: int, target_flops: float | None,
                 data: str | None) -> LayerPlan:
    """``prune pruning_method=layer``: the ``prune_blocks`` least sensitive blocks, or blocks until ``target_flops``."""
    if prune_blocks == 0 and target_flops is None:
        raise ArgumentError("'pruning_method=layer' needs a target: 'prune_blocks=N' (N >= 1) or "
                            "'target_flops=F' (fraction of GFLOPs kept, 0 < F < 1).")
    images = sensitivity.calibration_images(data, imgsz, device=next(model.parameters()).device)
    return LayerPruner(model, imgsz).prune(prune_blocks, target_flops, images)


def ranked(blocks: list[dict], channels: list[dict]) -> list[dict]:
    """All candidates, least distortion first (a block, or one channel group at one probed ratio)."""
    cands = [{"distortion": b["distortion"], "block": b["block"]} for b in blocks]
    cands += [{"distortion": c["distortion"], "group": c["group"], "ratio": float(c["ratio"])} for c in channels]
    return sorted(cands, key=lambda c: c["distortion"])


def plan_of(taken: list[dict]) -> dict:
    """Blocks to remove and per-group ratios (the largest taken) of a prefix of the ranked candidates."""
    ratios: dict[str, float] = {}
    removed: list[str] = []
    for c in taken:
        if "group" in c:
            ratios[c["group"]] = max(ratios.get(c["group"], 0.0), c["ratio"])
        elif not any(c["block"].startswith(r + ".") for r in removed):
            removed.append(c["block"])
    return {"remove_blocks": removed, "layer_ratios": ratios, "tau": taken[-1]["distortion"] if taken else 0.0}


def sensitivities(model: nn.Module, images, imgsz: int, importance_metric: str = "l2",
                  round_to: int = ROUND_TO) -> tuple[list[dict], list[dict]]:
    """Block and channel-group sensitivity rows: the costly part of a plan, computed once for several targets."""
    blocks = LayerPruner(model, imgsz).sensitivity(images)
    return blocks, sensitivity.channel_sensitivity(model, images, importance_metric=importance_metric,
                                                   round_to=round_to)


def suggest(model: nn.Module, images, target_flops: float, imgsz: int, importance_metric: str = "l2",
            round_to: int = ROUND_TO,
            rows: tuple[list[dict], list[dict]] | None = None) -> tuple[dict, list[dict], list[dict]]:
    """Plan, block sensitivity rows and channel sensitivity rows for keeping ``target_flops`` of the GFLOPs.

    ``rows`` are precomputed ``sensitivities()`` of the same model and images (``images`` is unused then).
    """
    blocks, channels = rows or sensitivities(model, images, imgsz, importance_metric, round_to)
    base = measure.gflops(model, imgsz)
    cands = ranked(blocks, channels)
    cache: dict[int, tuple[dict, float]] = {}

    def kept(k: int) -> float:
        if k not in cache:
            plan = plan_of(cands[:k])
            pruned = apply_plan(clean_copy(model), plan, imgsz, importance_metric, round_to)
            cache[k] = plan, pruned.gflops_after / base
        return cache[k][1]

    lo, hi = 0, len(cands)  # bisection for the shortest prefix whose plan keeps at most target_flops
    if kept(hi) > target_flops:
        LOGGER.warning(f"target_flops={target_flops} is out of reach: pruning every candidate keeps {kept(hi):.1%}")
        lo = hi
    while lo < hi:
        mid = (lo + hi) // 2
        if kept(mid) <= target_flops:
            hi = mid
        else:
            lo = mid + 1
    best = min((k for k in (lo - 1, lo) if k >= 0), key=lambda k: abs(kept(k) - target_flops))
    plan, frac = cache[best]
    return {**plan, "gflops_kept": round(frac, 4)}, blocks, channels


def load_fp32(src: Path, device: str | None) -> nn.Module:
    """The checkpoint's model in FP32 eval mode on `device` (default CPU)."""
    model, _ = checkpoints.load(src, device=select(device))
    return model.float().eval()


def load_input(src: Path, data: str | None, imgsz: int, device: str | None) -> tuple[nn.Module, torch.Tensor]:
    """The checkpoint's model in FP32 eval mode and its calibration images, on `device` (default CPU)."""
    model = load_fp32(src, device)
    return model, sensitivity.calibration_images(data, imgsz, device=next(model.parameters()).device)


def save_suggestion(plan: dict, blocks: list[dict], channels: list[dict], out_dir: Path, header: str) -> Path:
    """plan.yaml and the sensitivity CSVs and plots in out_dir, with the plan logged; returns plan.yaml."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = sensitivity.save(blocks, out_dir / "block_sensitivity", "block")
    files += sensitivity.save(channels, out_dir / "channel_sensitivity", "group")
    path = write_plan_yaml(plan, out_dir / "plan.yaml", header)
    LOGGER.info(f"Plan: remove {len(plan['remove_blocks'])} blocks ({', '.join(plan['remove_blocks']) or 'none'}), "
                f"prune {len(plan['layer_ratios'])} channel groups; GFLOPs kept {plan['gflops_kept']:.1%}, "
                f"distortion threshold {plan['tau']:.4g}")
    for group, ratio in plan["layer_ratios"].items():
        LOGGER.info(f"  {group:<36} ratio {ratio}")
    LOGGER.info(f"Results saved to {out_dir}: {path.name}, {', '.join(f.name for f in files)}")
    return path
