"""`yolo-compress suggest`: per-layer channel ratios and blocks to remove that meet a FLOPs target.

Rule: candidates (a block to remove, or a channel group at one of the probed ratios) are ranked by their distortion
when pruned alone (see ``sensitivity``) and taken in that order up to a threshold ``tau``; each group gets the
largest ratio taken. Equal marginal distortion is the least-predicted-loss allocation when distortions add up; the
number of candidates taken is found by bisection on the GFLOPs measured after really applying the plan to a copy of
the model, so the plan lands on the target within the granularity of one candidate.

``target_flops`` is the fraction of GFLOPs KEPT (0.5 = half the FLOPs of the input model).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn
from ultralytics.utils import LOGGER
from ultralytics.utils.files import increment_path

from yolo_compress import checkpoints, measure
from yolo_compress.cfg import DEFAULTS, ArgumentError, read_mapping, validate
from yolo_compress.device import select
from yolo_compress.pruning import sensitivity
from yolo_compress.pruning.channel import ChannelPruner, count_params
from yolo_compress.pruning.layer import LayerPlan, LayerPruner, clean_copy, rename_map
from yolo_compress.pruning.shortcuts import load_multipliers

KEYS = ("model", "data", "imgsz", "target_flops", "max_map_drop", "importance_metric", "round_to", "batch",
        "project", "name", "exist_ok", "device")
PLAN_KEYS = ("remove_blocks", "layer_ratios")


def load_plan(config: str | Path | None) -> dict | None:
    """The plan in a ``suggest`` YAML (``remove_blocks``, ``layer_ratios``), or None for a plain shortcut config."""
    path = Path(str(config)) if config else None
    if path is None or path.suffix not in (".yaml", ".yml") or not path.is_file():
        return None
    data = read_mapping(path, "shortcut_config")
    if not any(k in data for k in PLAN_KEYS):
        return None
    ratios = data.get("layer_ratios") or {}
    bad = {k: v for k, v in ratios.items() if not isinstance(v, (int, float)) or not 0 <= v < 1}
    if bad:
        raise ArgumentError(f"'shortcut_config={path}' has invalid layer_ratios {bad}; valid: numbers in [0, 1).")
    return {"remove_blocks": list(data.get("remove_blocks") or []), "layer_ratios": dict(ratios)}


def apply_plan(model: nn.Module, plan: dict, imgsz: int, importance_metric: str = "l1", round_to: int = 8) -> LayerPlan:
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


def prune_layers(model: nn.Module, args: dict, imgsz: int) -> LayerPlan:
    """``prune`` with a suggest plan (``shortcut_config=plan.yaml``) or ``pruning_method=layer``."""
    importance, round_to = args.get("importance_metric", "l1"), int(args.get("round_to", DEFAULTS["round_to"]))
    plan = load_plan(args.get("shortcut_config"))
    if plan is not None:
        return apply_plan(model, plan, imgsz, importance, round_to)
    n_blocks, target = int(args.get("prune_blocks") or 0), args.get("target_flops")
    if n_blocks == 0 and target is None:
        raise ArgumentError("'pruning_method=layer' needs a target: 'prune_blocks=N' (N >= 1) or "
                            "'target_flops=F' (fraction of GFLOPs kept, 0 < F < 1).")
    images = sensitivity.calibration_images(args.get("data"), imgsz, device=next(model.parameters()).device)
    return LayerPruner(model, imgsz).prune(n_blocks, target, images)


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


def sensitivities(model: nn.Module, images, imgsz: int, importance_metric: str = "l1",
                  round_to: int = 8) -> tuple[list[dict], list[dict]]:
    """Block and channel-group sensitivity rows: the costly part of a plan, computed once for several targets."""
    blocks = LayerPruner(model, imgsz).sensitivity(images)
    return blocks, sensitivity.channel_sensitivity(model, images, importance_metric=importance_metric,
                                                   round_to=round_to)


def suggest(model: nn.Module, images, target_flops: float, imgsz: int, importance_metric: str = "l1",
            round_to: int = 8, rows: tuple[list[dict], list[dict]] | None = None) -> tuple[dict, list[dict], list[dict]]:
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


def write_plan_yaml(plan: dict, path: Path, header: str) -> Path:
    """A shortcut_config-style YAML (multipliers included) that ``prune shortcut_config=`` applies; atomic."""
    body = {"multipliers": load_multipliers(None), "remove_blocks": plan["remove_blocks"],
            "layer_ratios": plan["layer_ratios"], "tau": float(plan["tau"]), "gflops_kept": plan["gflops_kept"]}
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(header + yaml.safe_dump(body, sort_keys=False))
    tmp.replace(path)
    return path


def load_input(src: Path, data: str | None, imgsz: int, device: str | None) -> tuple[nn.Module, torch.Tensor]:
    """The checkpoint's model in FP32 eval mode and its calibration images, on `device` (default CPU)."""
    model, _ = checkpoints.load(src, device=select(device))
    model = model.float().eval()
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


def plan_header(src: Path, target: float, imgsz: int) -> str:
    return (f"# yolo-compress suggest model={src} target_flops={target} imgsz={imgsz}\n"
            f"# apply: yolo-compress prune model={src} shortcut_config=<this file> imgsz={imgsz}\n")


def suggest_command(args: dict[str, Any]) -> Path:
    """Sensitivity of every block and channel group, then the plan: runs/suggest/<name>/plan.yaml (+ CSVs, plots)."""
    args = validate(args, KEYS)
    if not args.get("model"):
        raise ArgumentError("'model' is required, e.g. 'yolo-compress suggest model=best.pt data=data.yaml "
                            "target_flops=0.5'.")
    src = Path(str(args["model"]))
    if src.suffix != ".pt" or not src.is_file():
        raise FileNotFoundError(f"'model={src}' is not an existing .pt checkpoint.")
    target = args.get("target_flops")
    target = 0.5 if target is None else target
    imgsz = int(args.get("imgsz", 640))
    opt = {k: args.get(k, DEFAULTS[k]) for k in ("importance_metric", "round_to")}
    if opt["importance_metric"] == "taylor":
        raise ArgumentError("'importance_metric=taylor' is invalid for suggest; valid: l1, l2, bn, random.")
    model, images = load_input(src, args.get("data"), imgsz, args.get("device"))
    start = time.perf_counter()
    plan, blocks, channels = suggest(model, images, target, imgsz, opt["importance_metric"], opt["round_to"])
    LOGGER.info(f"Plan for target_flops={target:.0%} computed in {time.perf_counter() - start:.0f}s")
    out_dir = increment_path(Path(args.get("project") or "runs/suggest") / str(args.get("name") or "suggest"),
                             exist_ok=bool(args.get("exist_ok", False)))
    path = save_suggestion(plan, blocks, channels, out_dir, plan_header(src, target, imgsz))
    if args.get("data") and args.get("max_map_drop") is not None:
        check_map(model, plan, args, imgsz, opt, out_dir)
    return path


def check_map(model: nn.Module, plan: dict, args: dict, imgsz: int, opt: dict, out_dir: Path) -> None:
    """mAP of the plan applied without fine-tuning against max_map_drop (an upper bound on the drop after it)."""
    from yolo_compress.pruning.checkpoint import save_checkpoint

    pruned = clean_copy(model)
    apply_plan(pruned, plan, imgsz, opt["importance_metric"], opt["round_to"])
    trial = save_checkpoint(pruned, out_dir / "plan_trial.pt")
    batch, device = int(args.get("batch") or 16), args.get("device")
    try:
        before = measure.evaluate(args["model"], args["data"], imgsz, batch, device)["map50_95"]
        after = measure.evaluate(trial, args["data"], imgsz, batch, device)["map50_95"]
    finally:
        trial.unlink()
    drop = before - after
    level = LOGGER.info if drop <= args["max_map_drop"] else LOGGER.warning
    level(f"mAP50-95 {before:.4f} -> {after:.4f} with the plan before fine-tuning (drop {drop:.4f}, "
          f"max_map_drop={args['max_map_drop']}); fine-tuning recovers part of it")
