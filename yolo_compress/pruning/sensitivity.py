"""Sensitivity analysis for layer and channel pruning, on a fixed calibration batch.

Proxy: relative output distortion, ``||f'(x) - f(x)||^2 / ||f(x) - mean f(x)||^2`` averaged over the raw head
outputs (box regression and sigmoid class scores of every branch); the denominator is the output's variation, not its
energy, so constant offsets (anchor-relative boxes, the score prior) do not hide changes. It is measured on a fixed
batch of real images, model in eval mode.
Why this and not mAP on a validation subset: it needs no labels and one forward per candidate, it is smooth (mAP on
a few images is dominated by noise and by the confidence threshold), and every candidate sees the same input, so the
ranking is deterministic. It measures how far the unpruned network's function moves, which fine-tuning must undo; it
does not predict the mAP drop after fine-tuning. Scores are passed through the sigmoid so that the very negative
background logits, which do not matter for detection, do not dominate the norm.

Channel candidates are simulated, not pruned: zeroing the BatchNorm weight and bias of the channels a group would
lose makes those channels exactly zero after the activation (SiLU(0) = 0) in every coupled layer, which is what
their physical removal computes downstream. One channel-pruning plan per ratio gives the channels each group loses.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn
from ultralytics.data.augment import LetterBox
from ultralytics.utils import ASSETS, TQDM

from yolo_compress.pruning.channel import ROUND_TO, ChannelPruner
from yolo_compress.pruning.adapters import clean_copy
from yolo_compress.pruning.plan import write_rows

RATIOS = (0.25, 0.5, 0.75)  # channel ratios probed per group


def head_outputs(out) -> list[torch.Tensor]:
    """Raw head tensors of every branch (boxes, sigmoid scores), without features or post-processing."""
    preds = out[1] if isinstance(out, (tuple, list)) and len(out) == 2 and isinstance(out[1], dict) else out
    tensors: list[torch.Tensor] = []

    def walk(x, key: str = "") -> None:
        if isinstance(x, torch.Tensor):
            tensors.append(x.sigmoid() if key == "scores" else x)
        elif isinstance(x, dict):
            for k, v in x.items():
                if k != "feats":
                    walk(v, k)
        elif isinstance(x, (list, tuple)):
            for v in x:
                walk(v, key)

    walk(preds)
    return [t.float() for t in tensors]


@torch.no_grad()
def reference(model: nn.Module, images: torch.Tensor) -> list[torch.Tensor]:
    """Head outputs of the unpruned model on the calibration batch."""
    was_training = model.training
    model.eval()
    try:
        return head_outputs(model(images))
    finally:
        model.train(was_training)


def _relative_error(out: list[torch.Tensor], ref: list[torch.Tensor]) -> float:
    return sum(float((a - b).pow(2).sum()) / max(float((b - b.mean()).pow(2).sum()), 1e-12)
               for a, b in zip(out, ref)) / len(ref)


@torch.no_grad()
def distortion(model: nn.Module, images: torch.Tensor, ref: list[torch.Tensor]) -> float:
    """Squared error of ``model``'s head outputs against ``ref``, relative to the variation of ``ref``."""
    return _relative_error(reference(model, images), ref)


def calibration_images(data: str | None, imgsz: int, n: int = 8, device: torch.device | str = "cpu") -> torch.Tensor:
    """``n`` letterboxed validation images of ``data`` (or Ultralytics' two bundled images) as a float batch."""
    if data:
        from yolo_compress.data import images

        return torch.from_numpy(images.first_images(images.dataset(data, imgsz, "val"), n)).to(device)
    letterbox = LetterBox((imgsz, imgsz), auto=False)
    files = [ASSETS / "bus.jpg", ASSETS / "zidane.jpg"]
    batch = [letterbox(image=cv2.imread(str(f)))[..., ::-1].transpose(2, 0, 1) for f in files]
    return torch.from_numpy(np.ascontiguousarray(np.stack(batch))).float().div(255).to(device)


# Pixels (copies x images x height x width) per forward pass of masked candidates. Several candidates per pass pay
# while passes are small and per-layer overhead dominates (benchmarks/sensitivity_batching.py: 9x faster for 2
# images of 64 px, 2.4x for 8 of 64, 1.9-2.4x for 2 of 160); for 8 images of 160 px and more (suggest's 8 images at
# usual sizes) they gained nothing, and 8 copies of 8 images of 320 px were 2x slower, so below 3 copies per pass each
# candidate gets its own pass against one shared reference.
PIXELS_PER_PASS = 2**18


def _masked_forward(model: nn.Module, norms: dict[str, nn.BatchNorm2d], images: torch.Tensor,
                    chunk: list[dict[str, list[int]]]) -> list[torch.Tensor]:
    """Head outputs of one pass over len(chunk) copies of ``images``, copy j with candidate j's channels zeroed."""
    masks: dict[str, torch.Tensor] = {}
    for j, cand in enumerate(chunk):
        for bn_name, idxs in cand.items():
            bn = norms[bn_name]
            masks.setdefault(bn_name, bn.weight.new_ones(len(chunk), bn.num_features))[j, idxs] = 0
    per_sample = {name: m.repeat_interleave(len(images), 0)[:, :, None, None] for name, m in masks.items()}
    hooks = [norms[name].register_forward_hook(lambda mod, inp, out, m=m: out * m) for name, m in per_sample.items()]
    try:
        return head_outputs(model(images.repeat(len(chunk), 1, 1, 1)))
    finally:
        for h in hooks:
            h.remove()


@torch.no_grad()
def masked_distortions(model: nn.Module, images: torch.Tensor, candidates: list[dict[str, list[int]]],
                       desc: str = "masked candidates") -> list[float]:
    """Distortion of each candidate (BatchNorm name -> channels zeroed), several per forward pass on small inputs.

    A candidate's channels are zeroed at its BatchNorm outputs for its own copy of the images only, which equals
    zeroing those channels' weight and bias (eval-mode BatchNorm is per-sample, and SiLU(0) = 0 downstream).
    A pass of several candidates also carries one unmasked copy, the reference of that pass: convolution kernels
    round differently for different batch sizes, and on a model whose outputs barely vary (a random-init one) that
    rounding noise alone would dominate a comparison against a reference from another pass.
    """
    norms = {n: m for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)}
    n = len(images)
    copies = PIXELS_PER_PASS // (n * images.shape[-2] * images.shape[-1])
    batched = copies >= 3
    shared = None if batched else reference(model, images)
    step = copies - 1 if batched else 1
    was_training = model.training
    model.eval()
    results = []
    try:
        with TQDM(total=len(candidates), desc=desc) as bar:
            for start in range(0, len(candidates), step):
                chunk = candidates[start:start + step]
                outs = _masked_forward(model, norms, images, [{}, *chunk] if batched else chunk)
                ref, first = ([o[:n] for o in outs], 1) if batched else (shared, 0)
                results += [_relative_error([o[j * n:(j + 1) * n] for o in outs], ref)
                            for j in range(first, first + len(chunk))]
                bar.update(len(chunk))
    finally:
        model.train(was_training)
    return results


def channel_sensitivity(model: nn.Module, images: torch.Tensor, ratios=RATIOS, importance_metric: str = "l2",
                        round_to: int = ROUND_TO) -> list[dict]:
    """Per channel group and ratio: distortion when only that group loses the channels the pruner would remove."""
    rows = []
    for ratio in ratios:
        plan = ChannelPruner(clean_copy(model), ratio, importance_metric, round_to=round_to).prune()
        groups = [g for g in plan.groups if g["after"] != g["before"]]
        scores = masked_distortions(model, images, [g["removed"] for g in groups],
                                    desc=f"channel sensitivity ratio={ratio}")
        rows += [{"group": g["group"], "type": g["type"], "ratio": ratio, "before": g["before"], "after": g["after"],
                  "distortion": d} for g, d in zip(groups, scores)]
    return rows


def save(rows: list[dict], path: Path, key: str) -> list[Path]:
    """CSV of ``rows`` and a bar plot (log scale) of their distortion, one bar (per ratio) per ``key``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    csv_path = write_rows(rows, path.with_suffix(".csv"))
    return [csv_path, plot(rows, path.with_suffix(".png"), key)]


def plot(rows: list[dict], path: Path, key: str) -> Path:
    """Distortion per candidate; channel rows get one bar per probed ratio."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(r[key] for r in rows))
    ratios = sorted({r.get("ratio", 1.0) for r in rows})
    width = 0.8 / len(ratios)
    fig, ax = plt.subplots(figsize=(max(8.0, 0.15 * len(names) * len(ratios)), 4.5))
    for k, ratio in enumerate(ratios):
        vals = {r[key]: r["distortion"] for r in rows if r.get("ratio", 1.0) == ratio}
        ax.bar([i + k * width for i in range(len(names))], [max(vals.get(n, 0.0), 1e-9) for n in names],
               width=width, label=f"ratio {ratio}" if "ratio" in rows[0] else "removed")
    ax.set_yscale("log")
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(names))], [n.removeprefix("model.") for n in names],
                  rotation=90, fontsize=5)
    ax.set_ylabel("relative output distortion")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path
