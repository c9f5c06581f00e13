"""`distillation=True` in training: the Distillation technique plugged into CompressionTrainer."""

from __future__ import annotations

import torch
from ultralytics.utils import LOGGER
from ultralytics.utils.torch_utils import unwrap_model

from yolo_compress.distill import adapters as adapters_lib
from yolo_compress.distill.distillers import KnowledgeDistiller
from yolo_compress.distill.teacher import teacher_path
from yolo_compress.trainer import Technique, register


def kd_weight(alpha: float) -> float:
    """Factor on the distillation term added to the unscaled detection loss.

    The trainer's loss is det + extra terms, so (1 - alpha) * det + alpha * kd is realised as
    det + alpha / (1 - alpha) * kd: the same ratio between the two gradients, larger overall by 1 / (1 - alpha)
    (AdamW, Ultralytics' choice for short runs, is invariant to that factor; with SGD it acts as a larger lr0).
    """
    return alpha / (1.0 - alpha)


@register
class Distillation(Technique):
    """Distil a teacher checkpoint into the model being trained (response, feature or both)."""

    @classmethod
    def enabled(cls, args) -> bool:
        return bool(args.distillation)

    def __init__(self, trainer):
        super().__init__(trainer)
        c = trainer.compression
        teacher_path(c.teacher_model)
        self.weight = kd_weight(c.distill_alpha)
        if c.distill_alpha == 0:
            LOGGER.warning("yolo-compress: 'distill_alpha=0' gives distillation no weight: the teacher only adds time.")
        self.response = c.distill_type in {"response", "yolo"}
        self.features = c.distill_features or c.distill_type in {"feature", "yolo"}
        self.distiller: KnowledgeDistiller | None = None

    def on_model_ready(self) -> None:
        """Load and check the teacher (also on resume, from its path) and register the adapters in the student."""
        c, args = self.trainer.compression, self.trainer.args
        first = self.distiller is None
        self.distiller = KnowledgeDistiller(
            teacher_model=c.teacher_model,
            student_model=unwrap_model(self.trainer.model),
            temperature=c.temperature,
            alpha=c.distill_alpha,
            response=self.response,
            features=self.features,
            feature_loss=c.distill_feature_loss,
            gains={"box": args.box, "cls": args.cls, "dfl": args.dfl, "feat": getattr(args, "dis", 6.0)},
            names=self.trainer.data["names"],
        )
        self.distiller.attach()
        if first:
            # Added here, after CompressionTrainer's own epoch-start callback, so it runs after any pruning surgery.
            self.trainer.add_callback("on_train_epoch_start", self._follow_surgery)
        kinds = " + ".join(k for k, on in (("response", self.response), ("feature", self.features)) if on)
        LOGGER.info(f"yolo-compress: distilling {c.teacher_model} ({kinds}, T={c.temperature}, "
                    f"alpha={c.distill_alpha})")

    def _follow_surgery(self, trainer=None) -> None:
        """After pruning changed the student's neck widths, rebuild the adapters and the optimizer that trains them."""
        model = unwrap_model(self.trainer.model)
        self.distiller.student = model
        if self.distiller.adapters is None:
            return
        if adapters_lib.head_input_channels(model) != self.distiller.adapters.in_channels:
            self.distiller.adapters = self.distiller.build_adapters()
            self.distiller.attach()
            self.trainer.rebuild_after_surgery()

    def loss(self, batch: dict, preds) -> dict[str, torch.Tensor]:
        """The weighted distillation term on Ultralytics' scale (per-image mean times batch size)."""
        if isinstance(preds, (tuple, list)):  # validation outputs: no teacher pass, keep the column
            return {"kd": torch.zeros((), device=batch["img"].device)}
        kd = self.distiller(batch["img"], preds)
        return {"kd": kd * batch["img"].shape[0] * self.weight}

    def saving(self):
        """Save the EMA student without the adapters, so checkpoints are stock DetectionModels."""
        ema = self.trainer.ema.ema if self.trainer.ema else None
        return adapters_lib.detached(ema, unwrap_model(self.trainer.model))
