"""Sparsity training: L1 on convolution weights, group (channel) L1, and L1 on BatchNorm gammas.

The regularizers work on any `nn.Module`: call one to get its loss term, or `apply_gradient` to add its
sub-gradient straight into `.grad`. The trainer uses the second form after backward, as the network-slimming authors
do (Liu et al. 2017), because a loss term would be rescaled by Ultralytics' batch-size loss factor, AMP's grad scaler,
gradient accumulation and DDP's world-size factor, each of which the direct form states explicitly instead.

Scale: `lambda` is relative to the per-image mean detection loss. Ultralytics sums the detection loss over the
images of a batch and the gradients over `accumulate` batches (DDP multiplies by world_size and averages, which
again sums over the total batch), so one optimizer step carries the gradient of `batch * accumulate` images. The
penalty's sub-gradient is therefore added as `grad_scale * batch * accumulate * lambda * g(w)`.
"""

from __future__ import annotations

import abc
from copy import deepcopy
from typing import Any, Iterator

import torch
from torch import nn
from ultralytics.nn.modules.head import Detect
from ultralytics.utils import LOGGER, RANK
from ultralytics.utils.torch_utils import unwrap_model

from yolo_compress import analysis
from yolo_compress.cfg import DEFAULTS
from yolo_compress.trainer import Technique, register

# Detect branches whose last layer emits the raw box/class predictions: sparsifying them would shrink outputs, not
# channels, so they are left out by default.
_HEAD_BRANCHES = ("cv2", "cv3", "one2one_cv2", "one2one_cv3")


def head_prediction_modules(model: nn.Module) -> set[nn.Module]:
    """The Detect head's final prediction convs and DFL, and every module inside them."""
    out: set[nn.Module] = set()
    for m in model.modules():
        if not isinstance(m, Detect):
            continue
        for name in _HEAD_BRANCHES:
            for branch in getattr(m, name, None) or []:
                last = branch[-1] if isinstance(branch, nn.Sequential) else branch
                out.update(last.modules())
        out.update(m.dfl.modules())
    return out


class _Regularizer(abc.ABC):
    """A penalty `lam * sum(penalty(w))` over some layers' weights, as a loss term or as a direct sub-gradient."""

    kind: type[nn.Module] | tuple[type[nn.Module], ...] = nn.Conv2d

    def __init__(self, lam: float, exclude_head: bool = True):
        if lam < 0:
            raise ValueError(f"'lambda={lam}' is invalid: the coefficient must be >= 0.")
        self.lam = float(lam)
        self.exclude_head = exclude_head

    def modules(self, model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
        """The (name, module) pairs whose weight is penalized."""
        skip = head_prediction_modules(model) if self.exclude_head else set()
        for name, m in model.named_modules():
            if isinstance(m, self.kind) and m not in skip:
                yield name, m

    @staticmethod
    @abc.abstractmethod
    def penalty(w: torch.Tensor) -> torch.Tensor:
        """Un-scaled penalty of one weight tensor."""

    @staticmethod
    @abc.abstractmethod
    def subgradient(w: torch.Tensor) -> torch.Tensor:
        """A sub-gradient of `penalty` at `w` (0 where the penalty is not differentiable)."""

    def __call__(self, model: nn.Module) -> torch.Tensor:
        """The loss term `lam * sum(penalty)`, differentiable, on the model's device."""
        terms = [self.penalty(m.weight) for _, m in self.modules(model)]
        return self.lam * torch.stack(terms).sum() if terms else torch.zeros(())

    @torch.no_grad()
    def apply_gradient(self, model: nn.Module, factor: float = 1.0) -> None:
        """Add `factor * lam * subgradient` to each penalized weight's `.grad` (trainable weights only)."""
        alpha = factor * self.lam
        if alpha == 0:
            return
        for _, m in self.modules(model):
            w = m.weight
            if not w.requires_grad:
                continue
            g = self.subgradient(w).to(w.dtype)
            if w.grad is None:
                w.grad = alpha * g
            else:
                w.grad.add_(g, alpha=alpha)


class L1Regularizer(_Regularizer):
    """L1 on convolution weights: pushes individual weights to zero (unstructured sparsity)."""

    def __init__(self, lambda_l1: float = DEFAULTS["lambda_l1"], exclude_head: bool = True):
        super().__init__(lambda_l1, exclude_head)

    @staticmethod
    def penalty(w: torch.Tensor) -> torch.Tensor:
        return w.abs().sum()

    @staticmethod
    def subgradient(w: torch.Tensor) -> torch.Tensor:
        return torch.sign(w)

    @staticmethod
    def get_sparsity(model: nn.Module, threshold: float = 1e-3) -> dict[str, Any]:
        """Fraction of conv/linear weights with |w| < threshold: `overall_sparsity` and per-layer `layers`."""
        return analysis.weight_sparsity(model, threshold)


class StructuredL1Regularizer(_Regularizer):
    """Group L1: the sum of per-output-channel L2 norms, which drives whole channels to zero (for channel pruning)."""

    def __init__(self, lambda_l1: float = DEFAULTS["lambda_l1"], exclude_head: bool = True):
        super().__init__(lambda_l1, exclude_head)

    @staticmethod
    def penalty(w: torch.Tensor) -> torch.Tensor:
        return w.flatten(1).norm(dim=1).sum()

    @staticmethod
    def subgradient(w: torch.Tensor) -> torch.Tensor:
        norms = w.flatten(1).norm(dim=1).clamp_min(torch.finfo(w.dtype).tiny)
        return w / norms.view(-1, *([1] * (w.dim() - 1)))

    @staticmethod
    def get_sparsity(model: nn.Module, threshold: float = 1e-3) -> dict[str, Any]:
        """Fraction of conv output channels whose weights are all below threshold: `overall_sparsity`, `layers`."""
        r = analysis.channel_sparsity(model, threshold)
        return {"overall_sparsity": r["channel_sparsity"], "layers": r["layers"]}


class BatchNormL1Regularizer(_Regularizer):
    """L1 on BatchNorm gammas (network slimming): small gammas mark channels `importance_metric=bn` prunes."""

    kind = (nn.BatchNorm2d,)

    def __init__(self, lambda_bn: float = DEFAULTS["lambda_bn"], exclude_head: bool = True):
        super().__init__(lambda_bn, exclude_head)

    penalty = staticmethod(L1Regularizer.penalty)
    subgradient = staticmethod(L1Regularizer.subgradient)

    @staticmethod
    def get_sparsity(model: nn.Module, threshold: float = 1e-2) -> dict[str, Any]:
        """Fraction of BatchNorm gammas with |gamma| < threshold: `overall_sparsity` and per-layer `layers`."""
        layers, small, total = {}, 0, 0
        for name, m in model.named_modules():
            if isinstance(m, nn.BatchNorm2d) and m.weight is not None:
                n = int((m.weight.detach().abs() < threshold).sum())
                layers[name] = n / m.weight.numel()
                small, total = small + n, total + m.weight.numel()
        return {"overall_sparsity": small / total if total else 0.0, "layers": layers}


def get_bn_l1_loss(model: nn.Module, lambda_bn: float = DEFAULTS["lambda_bn"]) -> torch.Tensor:
    """`lambda_bn * sum(|gamma|)` over the model's BatchNorm layers, for users who add penalties as loss terms."""
    return BatchNormL1Regularizer(lambda_bn)(model)


@register
class SparsityTechnique(Technique):
    """`l1_regularization=True`: weight L1 (or group L1 with `structured_l1=True`) at `lambda_l1`, plus BatchNorm-gamma
    L1 at `lambda_bn`; either coefficient may be 0. Sub-gradients are added to `.grad` before each optimizer step."""

    WEIGHT_THRESHOLD = 1e-3
    BN_THRESHOLD = 1e-2

    def __init__(self, trainer):
        super().__init__(trainer)
        c = trainer.compression
        weight_cls = StructuredL1Regularizer if c.structured_l1 else L1Regularizer
        self.regularizers = [r for r in (weight_cls(c.lambda_l1), BatchNormL1Regularizer(c.lambda_bn)) if r.lam > 0]
        self.start_bn: nn.Module | None = None

    @classmethod
    def enabled(cls, args) -> bool:
        if not args.l1_regularization and (args.structured_l1 or args.lambda_bn != DEFAULTS["lambda_bn"]):
            LOGGER.warning("yolo-compress: 'structured_l1' and 'lambda_bn' act only with 'l1_regularization=True'; "
                           "no sparsity penalty is applied in this run.")
        return bool(args.l1_regularization)

    def _model(self) -> nn.Module:
        """The model that is validated and saved (the EMA once it exists)."""
        ema = getattr(self.trainer, "ema", None)
        return ema.ema if ema is not None else unwrap_model(self.trainer.model)

    def on_model_ready(self) -> None:
        model = unwrap_model(self.trainer.model)
        self.start_bn = nn.ModuleList(deepcopy(m) for m in model.modules() if isinstance(m, nn.BatchNorm2d))
        names = ", ".join(f"{type(r).__name__}({r.lam:g})" for r in self.regularizers) or "none (all lambdas are 0)"
        LOGGER.info(f"yolo-compress: sparsity training with {names}")

    def before_optimizer_step(self, grad_scale: float) -> None:
        factor = grad_scale * self.trainer.batch_size * self.trainer.accumulate
        model = unwrap_model(self.trainer.model)
        for r in self.regularizers:
            r.apply_gradient(model, factor)

    def metrics(self) -> dict[str, float]:
        model = self._model()
        bn = analysis.bn_stats(model, self.BN_THRESHOLD)
        return {
            "sparsity/weights": analysis.weight_sparsity(model, self.WEIGHT_THRESHOLD)["overall_sparsity"],
            "sparsity/bn_gamma": bn["bn_sparsity"],
            "sparsity/bn_mean_abs_gamma": bn["bn_mean_abs_gamma"],
        }

    def on_train_end(self) -> None:
        if RANK not in {-1, 0} or self.start_bn is None:
            return
        path = analysis.plot_bn_histogram({"start": self.start_bn, "end": self._model()},
                                          self.trainer.save_dir / "bn_gamma_hist.png")
        LOGGER.info(f"yolo-compress: BN-gamma histogram saved to {path}")
