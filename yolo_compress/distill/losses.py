"""Distillation losses for YOLO heads and neck features, each returning a scalar mean per image.

Written here because neither Ultralytics nor torch ships them: Ultralytics only has a score-weighted feature MSE
inside its DistillationModel, and softmax-KL on logits (the classic Hinton loss) does not fit sigmoid YOLO heads.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from ultralytics.utils.metrics import bbox_iou
from ultralytics.utils.tal import dist2bbox

EPS = 1e-9


def branches(preds: dict | tuple | list) -> dict[str, dict]:
    """Training-format head outputs by branch ('one2many' and, for end-to-end heads, 'one2one').

    Accepts train-mode dicts and eval-mode (decoded, raw) tuples.
    """
    if isinstance(preds, (tuple, list)):
        preds = preds[1]
    if "one2many" in preds:
        return {k: preds[k] for k in ("one2many", "one2one") if k in preds}
    return {"one2many": preds}


def confidence(scores: torch.Tensor) -> torch.Tensor:
    """Per-anchor confidence (B, A): highest class probability of sigmoid class logits (B, nc, A)."""
    return scores.detach().float().sigmoid().amax(1)


def weighted_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mean of per-anchor values (B, A) weighted by (B, A) weights, normalised per image, averaged over images."""
    return ((values * weights).sum(-1) / (weights.sum(-1) + EPS)).mean()


def binary_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Element-wise KL between temperature-softened Bernoulli distributions, times T^2 (Hinton's gradient scale).

    Each class of a sigmoid head is an independent yes/no, so the softened target is sigmoid(z_t / T) per class,
    not a softmax across classes. Zero exactly when the logits are equal.
    """
    s, t = student_logits.float() / temperature, teacher_logits.float() / temperature
    p = t.sigmoid()
    cross = F.binary_cross_entropy_with_logits(s, p, reduction="none")
    entropy = F.binary_cross_entropy_with_logits(t, p, reduction="none")
    return (cross - entropy) * temperature**2


def class_kd(student_scores: torch.Tensor, teacher_scores: torch.Tensor, temperature: float) -> torch.Tensor:
    """Class distillation: binary KL summed over classes, averaged over anchors where teacher or student is confident.

    Weighting by the larger of the two confidences keeps both the teacher's detections and the student's false
    positives in focus while ignoring the many anchors both agree are background.
    """
    kl = binary_kl(student_scores, teacher_scores, temperature).sum(1)
    weights = torch.maximum(confidence(teacher_scores), confidence(student_scores))
    return weighted_mean(kl, weights)


def distances(boxes: torch.Tensor, reg_max: int) -> torch.Tensor:
    """(B, 4*reg_max, A) box outputs to (B, 4, A) left-top-right-bottom distances in grid cells."""
    if reg_max == 1:
        return boxes.float()
    b, _, a = boxes.shape
    bins = torch.arange(reg_max, device=boxes.device, dtype=torch.float32)
    return (boxes.float().view(b, 4, reg_max, a).softmax(2) * bins.view(1, 1, -1, 1)).sum(2)


def box_kd(
    student_boxes: torch.Tensor,
    teacher_boxes: torch.Tensor,
    anchors: torch.Tensor,
    weights: torch.Tensor,
    student_reg_max: int = 1,
    teacher_reg_max: int = 1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Box distillation on decoded boxes: (1 - IoU, L1 of the distances), weighted by teacher confidence (B, A).

    `anchors` are (A, 2) anchor centres in grid cells, as from ultralytics.utils.tal.make_anchors.
    """
    s, t = distances(student_boxes, student_reg_max), distances(teacher_boxes, teacher_reg_max).detach()
    centres = anchors.float().transpose(0, 1).unsqueeze(0)
    s_xyxy = dist2bbox(s, centres, xywh=False, dim=1).transpose(1, 2)
    t_xyxy = dist2bbox(t, centres, xywh=False, dim=1).transpose(1, 2)
    iou = bbox_iou(s_xyxy, t_xyxy, xywh=False).squeeze(-1)
    l1 = (s - t).abs().mean(1)
    return weighted_mean(1.0 - iou, weights), weighted_mean(l1, weights)


def dfl_kd(
    student_boxes: torch.Tensor, teacher_boxes: torch.Tensor, reg_max: int, temperature: float, weights: torch.Tensor
) -> torch.Tensor:
    """KL between teacher and student box-side distributions (DFL bins), times T^2, weighted by confidence (B, A)."""
    b, _, a = student_boxes.shape
    s = F.log_softmax(student_boxes.float().view(b, 4, reg_max, a) / temperature, dim=2)
    t = F.log_softmax(teacher_boxes.float().view(b, 4, reg_max, a) / temperature, dim=2)
    kl = (t.exp() * (t - s)).sum(2).mean(1) * temperature**2
    return weighted_mean(kl, weights)


def cwd(student_feat: torch.Tensor, teacher_feat: torch.Tensor, temperature: float) -> torch.Tensor:
    """Channel-wise distillation (Shu et al., ICCV 2021): per channel, KL between spatial softmax maps, times T^2.

    Each channel becomes a distribution over locations, so the student learns where each channel fires rather than
    its absolute activation values.
    """
    s = student_feat.float().flatten(2) / temperature
    t = teacher_feat.float().flatten(2) / temperature
    t_log = F.log_softmax(t, dim=-1)
    kl = (t_log.exp() * (t_log - F.log_softmax(s, dim=-1))).sum(-1)
    return kl.mean() * temperature**2


def feature_mse(
    student_feat: torch.Tensor, teacher_feat: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Per-location MSE averaged over channels; weighted by (B, H*W) teacher confidence when given."""
    mse = (student_feat.float() - teacher_feat.float()).pow(2).mean(1).flatten(1)
    return mse.mean() if weights is None else weighted_mean(mse, weights)
