"""Channel importance criteria, all from torch-pruning; only the Taylor gradient pass needs YOLO data."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch
import torch.distributed as dist
import torch_pruning as tp
from torch import nn

METRICS = ("l1", "l2", "bn", "taylor", "random")
TAYLOR_BATCHES = 4  # training batches whose loss gradients rank channels for importance_metric=taylor


def build_importance(metric: str) -> tp.importance.Importance:
    """Return the torch-pruning importance for ``metric``; raw per-channel scores (normalisation is done later)."""
    if metric == "l1":
        return tp.importance.MagnitudeImportance(p=1, group_reduction="mean", normalizer=None)
    if metric == "l2":
        return tp.importance.MagnitudeImportance(p=2, group_reduction="mean", normalizer=None)
    if metric == "bn":
        return tp.importance.BNScaleImportance(group_reduction="mean", normalizer=None)
    if metric == "taylor":
        return tp.importance.TaylorImportance(group_reduction="mean", normalizer=None)
    if metric == "random":
        return tp.importance.RandomImportance()
    raise ValueError(f"importance_metric={metric!r} is not supported; accepted: {', '.join(METRICS)}")


@contextmanager
def unfrozen(model: nn.Module) -> Iterator[None]:
    """Every parameter trainable inside the block, frozen ones frozen again after.

    Ultralytics' loaders freeze a checkpoint's parameters. torch-pruning traces the model through autograd, and a
    layer whose inputs and weights all lack gradients leaves no trace: the stem's groups silently went missing.
    """
    frozen = [p for p in model.parameters() if not p.requires_grad]
    for p in frozen:
        p.requires_grad_(True)
    try:
        yield
    finally:
        for p in frozen:
            p.requires_grad_(False)


def accumulate_gradients(model: nn.Module, batches: Iterable[dict]) -> int:
    """Back-propagate the detection loss of ``batches`` so Taylor importance (|w * dL/dw|) can be read.

    Returns the number of batches used. The model is left in eval mode with gradients in ``.grad``, summed over
    DDP ranks so every rank prunes the same channels. A checkpoint loaded for inference has its parameters frozen
    (Ultralytics' loaders set requires_grad False); they are unfrozen for the backward pass and frozen back after.
    """
    device = next(model.parameters()).device
    model.train()
    model.zero_grad(set_to_none=True)
    n = 0
    with unfrozen(model):
        for batch in batches:
            batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
            batch["img"] = batch["img"].float() / 255
            loss, _ = model.loss(batch)
            loss.sum().backward()
            n += 1
    if dist.is_available() and dist.is_initialized():  # DDP ranks saw different batches: agree on one ranking
        for p in model.parameters():
            if p.grad is not None:
                dist.all_reduce(p.grad)
    model.eval()
    return n
