"""Distillers: a frozen teacher plus the losses that pull a YOLO student towards it, usable outside the trainer.

    distiller = YOLODistiller(teacher_model="teacher.pt", student_model=student, temperature=4.0, alpha=0.7)
    distiller.attach()                                   # adapters become part of the student (optimizer sees them)
    preds = student(batch["img"])                        # train-mode outputs
    det, _ = student.loss(batch, preds)
    loss = distiller.combine(det.sum(), distiller(batch["img"], preds) * len(batch["img"]))
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from ultralytics.nn.tasks import guess_model_task
from ultralytics.utils.tal import make_anchors

from yolo_compress.distill import adapters as adapters_lib
from yolo_compress.distill import losses
from yolo_compress.distill.teacher import check_compatible, freeze, head, load_teacher, teacher_outputs

FEATURE_LOSSES = ("cwd", "mse")
# Same gains as Ultralytics' detection loss (box, cls, dfl) so each distillation term sits on the scale of the
# detection term it mirrors; `feat` equals Ultralytics' `dis` default for its feature distillation.
DEFAULT_GAINS = {"box": 7.5, "cls": 0.5, "dfl": 1.5, "feat": 6.0}


class KnowledgeDistiller:
    """General distiller: response terms (class and box outputs) and/or feature terms (neck features via adapters).

    `alpha` weights distillation against the detection loss: total = (1 - alpha) * det + alpha * kd.
    """

    response: bool = True
    features: bool = False

    def __init__(
        self,
        teacher_model: str | Path | nn.Module,
        student_model: nn.Module,
        temperature: float = 4.0,
        alpha: float = 0.7,
        response: bool | None = None,
        features: bool | None = None,
        feature_loss: str = "cwd",
        gains: dict[str, float] | None = None,
        names: dict | None = None,
    ):
        device = next(student_model.parameters()).device
        if isinstance(teacher_model, (str, Path)):
            teacher = load_teacher(teacher_model, device)
        else:
            teacher = freeze(teacher_model).to(device)
        if getattr(teacher, "task", None) is None:
            teacher.task = guess_model_task(teacher)
        check_compatible(teacher, student_model, names)
        self.teacher = teacher
        self.student = student_model
        self.temperature = float(temperature)
        self.alpha = float(alpha)
        self.response = self.response if response is None else response
        self.features = self.features if features is None else features
        self.feature_loss = feature_loss
        self.gains = {**DEFAULT_GAINS, **(gains or {})}
        self.adapters = self.build_adapters() if self.features else None

    def build_adapters(self) -> adapters_lib.FeatureAdapters:
        """Fresh adapters for the student's current head-input widths (call again after the student is pruned)."""
        s, t = adapters_lib.head_input_channels(self.student), adapters_lib.head_input_channels(self.teacher)
        return adapters_lib.FeatureAdapters(s, t).to(next(self.student.parameters()).device)

    def attach(self) -> None:
        """Register the adapters inside the student, so optimizers built from the student train them."""
        if self.adapters is not None:
            adapters_lib.attach(self.student, self.adapters)

    def parameters(self) -> list[nn.Parameter]:
        """Trainable distillation parameters (the adapters); the teacher has none."""
        return [] if self.adapters is None else list(self.adapters.parameters())

    def teacher_preds(self, img: torch.Tensor) -> dict:
        """The teacher's raw outputs for this batch, without gradients, in eval mode."""
        return teacher_outputs(self.teacher, img)

    def __call__(self, img: torch.Tensor, student_preds: dict | tuple) -> torch.Tensor:
        """Distillation loss (mean per image) of the student's outputs on `img` against the teacher's."""
        return sum(self.terms(student_preds, self.teacher_preds(img)).values())

    def terms(self, student_preds: dict | tuple, teacher_preds: dict | tuple) -> dict[str, torch.Tensor]:
        """The gain-weighted distillation terms by name, each a mean per image."""
        terms = {}
        if self.response:
            terms.update(self.response_terms(student_preds, teacher_preds))
        if self.features:
            terms["feat"] = self.feature_term(student_preds, teacher_preds)
        return terms

    def response_terms(self, student_preds: dict | tuple, teacher_preds: dict | tuple) -> dict[str, torch.Tensor]:
        """Class and box distillation, averaged over the branches both heads have (one-to-many, one-to-one)."""
        s_branches, t_branches = losses.branches(student_preds), losses.branches(teacher_preds)
        common = [k for k in s_branches if k in t_branches]
        s_head, t_head = head(self.student), head(self.teacher)
        same_bins = s_head.reg_max == t_head.reg_max > 1
        totals: dict[str, torch.Tensor] = {}
        for k in common:
            s, t = s_branches[k], t_branches[k]
            weights = losses.confidence(t["scores"])
            terms = {"cls": self.gains["cls"] * losses.class_kd(s["scores"], t["scores"], self.temperature)}
            if same_bins:
                terms["dfl"] = self.gains["dfl"] * losses.dfl_kd(
                    s["boxes"], t["boxes"], s_head.reg_max, self.temperature, weights
                )
            else:
                anchors = make_anchors(s["feats"], s_head.stride, 0.5)[0]
                iou, l1 = losses.box_kd(s["boxes"], t["boxes"], anchors, weights, s_head.reg_max, t_head.reg_max)
                terms["box"] = self.gains["box"] * iou
                terms["dfl"] = self.gains["dfl"] * l1
            for name, v in terms.items():
                totals[name] = totals.get(name, 0) + v / len(common)
        return totals

    def feature_term(self, student_preds: dict | tuple, teacher_preds: dict | tuple) -> torch.Tensor:
        """Neck (Detect-input) feature distillation through the adapters, averaged over levels."""
        s = losses.branches(student_preds)["one2many"]
        t = losses.branches(teacher_preds)["one2many"]
        s_feats = self.adapters(s["feats"])
        if self.feature_loss == "cwd":
            per_level = [losses.cwd(sf, tf, self.temperature) for sf, tf in zip(s_feats, t["feats"])]
        else:
            conf = losses.confidence(t["scores"]).split([f.shape[2] * f.shape[3] for f in t["feats"]], dim=1)
            per_level = [losses.feature_mse(sf, tf, w) for sf, tf, w in zip(s_feats, t["feats"], conf)]
        return self.gains["feat"] * sum(per_level) / len(per_level)

    def combine(self, detection_loss: torch.Tensor, kd_loss: torch.Tensor) -> torch.Tensor:
        """(1 - alpha) * detection + alpha * distillation, as the seed documents describe `distill_alpha`."""
        return (1.0 - self.alpha) * detection_loss + self.alpha * kd_loss


class ResponseBasedDistiller(KnowledgeDistiller):
    """Output distillation: per-class sigmoid KL with temperature, boxes by IoU/L1 (or DFL-bin KL)."""

    response, features = True, False


class FeatureBasedDistiller(KnowledgeDistiller):
    """Neck-feature distillation through trainable 1x1 adapters (CWD or confidence-weighted MSE)."""

    response, features = False, True


class YOLODistiller(KnowledgeDistiller):
    """Response and feature distillation together: the recommended setting for detection."""

    response, features = True, True
