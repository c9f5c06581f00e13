"""`pruning=True pruning_method=layer`: remove whole blocks at the start of epoch `prune_at_epoch`."""

from __future__ import annotations

import torch.distributed as dist
from ultralytics.utils import LOGGER, RANK
from ultralytics.utils.torch_utils import unwrap_model

from yolo_compress.cfg import ArgumentError
from yolo_compress.measure import count_params
from yolo_compress.pruning.layer import LayerPruner
from yolo_compress.pruning.technique import check_prune_epoch
from yolo_compress.trainer import Technique, register

CALIBRATION_IMAGES = 8  # images of the first training batch used as the fixed sensitivity batch


@register
class LayerPruning(Technique):
    """Rank blocks by output distortion on one training batch (rank 0's ranking is shared with every DDP rank),
    remove the least sensitive until `prune_blocks` or `target_flops` is met, then rebuild optimizer, EMA, ...
    """

    @classmethod
    def enabled(cls, args) -> bool:
        if not (args.pruning and args.prune_at_epoch and args.pruning_method == "layer"):
            return False
        if not args.prune_blocks and args.target_flops is None:
            raise ArgumentError("'pruning_method=layer' needs a target: 'prune_blocks=N' (N >= 1) or "
                                "'target_flops=F' (fraction of GFLOPs kept, 0 < F < 1).")
        return True

    def on_model_ready(self) -> None:
        check_prune_epoch(self.trainer)

    def on_epoch_start(self) -> None:
        trainer, c = self.trainer, self.trainer.compression
        if trainer.epoch != c.prune_at_epoch:
            return
        model = unwrap_model(trainer.model)
        model.load_state_dict(trainer.ema.ema.state_dict())  # prune what was validated and saved so far
        device = next(model.parameters()).device
        images = next(iter(trainer.train_loader))["img"][:CALIBRATION_IMAGES].to(device).float() / 255
        was_training = model.training
        pruner = LayerPruner(model, imgsz=trainer.args.imgsz)
        order = [r["block"] for r in sorted(pruner.sensitivity(images), key=lambda r: r["distortion"])]
        if dist.is_available() and dist.is_initialized():  # ranks saw different batches: rank 0's ranking wins
            shared = [order]
            dist.broadcast_object_list(shared, src=0)
            order = shared[0]
        plan = pruner.prune(c.prune_blocks, c.target_flops, names=order)
        model.train(was_training)
        trainer.rebuild_after_surgery()
        trainer.best_fitness = None  # best.pt must be one of the pruned epochs
        trainer.stopper.best_fitness, trainer.stopper.best_epoch = 0.0, trainer.epoch
        if RANK in {-1, 0}:
            LOGGER.info(f"yolo-compress: removed {len(plan.blocks)} blocks at epoch {trainer.epoch + 1}: GFLOPs "
                        f"{plan.gflops_before:.3f} -> {plan.gflops_after:.3f}, params {plan.params_before:,} -> "
                        f"{plan.params_after:,}")
            (trainer.save_dir / "prune_plan.txt").write_text(plan.table() + "\n")

    def metrics(self) -> dict[str, float]:
        return {"pruning/params": float(count_params(unwrap_model(self.trainer.model)))}
