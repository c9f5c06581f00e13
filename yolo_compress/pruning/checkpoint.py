"""Writing pruned models as plain Ultralytics checkpoints (loadable by stock ``YOLO(path)``)."""

from __future__ import annotations

from copy import deepcopy
from datetime import datetime
from pathlib import Path

import torch
from torch import nn
from ultralytics import __version__

from yolo_compress.files import atomic_path


def save_checkpoint(model: nn.Module, path: str | Path, train_args: dict | None = None, extra: dict | None = None) -> Path:
    """Save ``model`` in half precision in Ultralytics' checkpoint layout, atomically (temp file + rename).

    ``extra`` holds plain-data metadata (e.g. the pruning plan) under the ``yolo_compress`` key; stock loaders ignore it.
    """
    path = Path(path)
    snapshot = deepcopy(model).half().to(memory_format=torch.contiguous_format)
    if hasattr(snapshot, "criterion"):
        snapshot.criterion = None
    if hasattr(snapshot, "args") and not isinstance(snapshot.args, dict):
        snapshot.args = dict(vars(snapshot.args))
    ckpt = {
        "date": datetime.now().astimezone().isoformat(),
        "version": __version__,
        "license": "AGPL-3.0 License (https://ultralytics.com/license)",
        "docs": "https://docs.ultralytics.com",
        "epoch": -1,
        "best_fitness": None,
        "model": snapshot,
        "ema": None,
        "updates": None,
        "optimizer": None,
        "train_args": dict(train_args or {}),
        "train_metrics": None,
        "yolo_compress": dict(extra or {}),
    }
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)
    return path
