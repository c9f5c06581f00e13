"""Batches of the user's training images for a pruning step, and BatchNorm re-estimation on them."""

from __future__ import annotations

import torch
from torch import nn

RECALIBRATION_BATCHES = 8  # train batches whose statistics BatchNorm is re-estimated on after pruning


def train_batches(model: nn.Module, data: str, imgsz: int, batch: int, n_batches: int) -> list[dict]:
    """A few shuffled batches of the train split, letterboxed as in val (no augmentation). The model gets a
    loss-ready ``args`` for Taylor importance (v8DetectionLoss reads box/cls/dfl gains as attributes)."""
    from ultralytics.cfg import get_cfg
    from ultralytics.data import build_dataloader

    from yolo_compress.data import images

    dataset = images.dataset(data, imgsz, "train", batch=batch, stride=int(model.stride.max()))
    model.args = get_cfg(overrides={"imgsz": imgsz, "batch": batch, "data": data})
    model.criterion = None
    batches = []
    # Ultralytics seeds the shuffle from torch.initial_seed(), random per process: fixed here, so that pruning the
    # same checkpoint twice sees the same images (the refit's result depends on them).
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        for b in build_dataloader(dataset, batch, workers=0, shuffle=True):
            batches.append(b)
            if len(batches) == n_batches:
                break
    return batches


@torch.no_grad()
def recalibrate_bn(model: nn.Module, batches: list[dict]) -> None:
    """Re-estimate every BatchNorm's running statistics on the user's images, with torch's ``update_bn``.

    Removing channels changes what the following BatchNorms see: a channel whose gamma is ~0 still sends a constant,
    SiLU(beta), that the next layer's running mean includes. With those stale statistics a pruned model evaluates
    far below what it computes in training mode, until fine-tuning re-estimates them.
    """
    from torch.optim.swa_utils import update_bn

    device = next(model.parameters()).device
    update_bn(([b["img"].to(device).float() / 255] for b in batches), model)
