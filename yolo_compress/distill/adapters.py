"""Trainable 1x1 adapters that map student neck features onto the teacher's channel widths.

They live as a submodule of the student DetectionModel while training (so the optimizer, EMA and DDP see them) and
are taken out before a checkpoint is written, so saved models stay stock Ultralytics.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

ATTR = "distill_adapters"


def head_input_channels(model: nn.Module) -> list[int]:
    """Channels of each Detect-head input (P3/P4/P5), read from the head's first convolutions (pruning-aware)."""
    det = model.model[-1]
    return [next(m for m in branch.modules() if isinstance(m, nn.Conv2d)).in_channels for branch in det.cv2]


def _optional_on_load(module: nn.Module, incompatible) -> None:
    """Let state dicts without adapters (stripped checkpoints on resume) load strictly, keeping current adapters."""
    incompatible.missing_keys[:] = [k for k in incompatible.missing_keys if ATTR not in k.split(".")]


class FeatureAdapters(nn.ModuleList):
    """One 1x1 convolution per feature level, student channels -> teacher channels.

    Equal widths start as the identity, so distillation begins by matching the features as they are.
    """

    def __init__(self, student_channels: list[int], teacher_channels: list[int]):
        super().__init__(nn.Conv2d(cs, ct, 1) for cs, ct in zip(student_channels, teacher_channels))
        for conv in self:
            if conv.in_channels == conv.out_channels:
                nn.init.eye_(conv.weight.view(conv.out_channels, conv.in_channels))
                nn.init.zeros_(conv.bias)
        self.register_load_state_dict_post_hook(_optional_on_load)

    @property
    def in_channels(self) -> list[int]:
        return [conv.in_channels for conv in self]

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        return [conv(f) for conv, f in zip(self, feats)]


def attach(model: nn.Module, adapters: FeatureAdapters) -> None:
    """Register the adapters inside the student model so they are trained and synchronised with it."""
    setattr(model, ATTR, adapters.to(next(model.parameters()).device))


@contextlib.contextmanager
def detached(*models: nn.Module | None) -> Iterator[None]:
    """Temporarily remove the adapters from the given models (e.g. the EMA model while a checkpoint is written)."""
    removed = [(m, m._modules.pop(ATTR)) for m in models if m is not None and ATTR in m._modules]
    try:
        yield
    finally:
        for m, adapters in removed:
            setattr(m, ATTR, adapters)
