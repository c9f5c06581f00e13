"""Teacher loading and the checks that a teacher can teach a given student, done before training starts."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from yolo_compress import checkpoints
from yolo_compress.cfg import ArgumentError


def teacher_path(value: str | Path | None) -> Path:
    """The teacher checkpoint path, refused early when missing or not a .pt file."""
    if value is None:
        raise ArgumentError("'teacher_model' is required with 'distillation=True', e.g. 'teacher_model=yolo26s.pt'.")
    path = Path(value)
    if path.suffix != ".pt":
        raise ArgumentError(
            f"'teacher_model={value}' is invalid. Valid 'teacher_model' values are Ultralytics .pt files."
        )
    if not path.is_file():
        raise ArgumentError(f"'teacher_model={value}' does not exist. Pass the path of a trained detection .pt file.")
    return path


def load_teacher(path: str | Path, device: torch.device | str | None = None) -> nn.Module:
    """An Ultralytics detection checkpoint as a frozen FP32 model in eval mode (no parameter requires grad)."""
    return freeze(checkpoints.load(teacher_path(path), device=device, arg="teacher_model")[0])


def freeze(teacher: nn.Module) -> nn.Module:
    """FP32, eval mode, no gradients: the teacher only produces targets."""
    teacher.float().eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def head(model: nn.Module) -> nn.Module:
    """The detection head (last layer) of an Ultralytics model."""
    return model.model[-1]


def check_compatible(
    teacher: nn.Module, student: nn.Module, names: dict | None = None, what: str = "teacher_model"
) -> None:
    """Refuse a teacher whose task, classes or feature levels differ from the student's (one-line ArgumentError)."""
    task = getattr(teacher, "task", None)
    if task != "detect":
        raise ArgumentError(f"'{what}' is a '{task}' model; distillation needs a detection ('detect') teacher.")
    t_head, s_head = head(teacher), head(student)
    if t_head.nc != s_head.nc:
        raise ArgumentError(f"'{what}' has {t_head.nc} classes but the student has {s_head.nc}; they must match.")
    t_names = {int(k): v for k, v in dict(teacher.names).items()}
    s_names = {int(k): v for k, v in dict(names if names is not None else student.names).items()}
    if t_names != s_names:
        raise ArgumentError(
            f"'{what}' class names {list(t_names.values())} differ from the data's {list(s_names.values())}."
        )
    t_strides, s_strides = (m.stride.flatten().tolist() for m in (teacher, student))
    if t_strides != s_strides:
        raise ArgumentError(
            f"'{what}' has feature strides {t_strides} but the student has {s_strides}; they must have the same levels."
        )


@torch.no_grad()
def teacher_outputs(teacher: nn.Module, img: torch.Tensor) -> dict:
    """The teacher's raw head outputs in training format (boxes, scores, feats per branch) for a batch.

    The teacher runs in eval mode (BatchNorm running statistics), where Ultralytics' Detect returns
    (decoded predictions, raw outputs); only the raw outputs are needed.
    """
    teacher.eval()
    out = teacher(img.float())
    return out[1] if isinstance(out, (tuple, list)) else out
