"""`pruning=True`: channel pruning at the start of epoch `prune_at_epoch`, then training goes on pruned."""

from __future__ import annotations

import torch
from ultralytics.utils import LOGGER, RANK
from ultralytics.utils.torch_utils import unwrap_model

from yolo_compress.cfg import ArgumentError
from yolo_compress.measure import count_params
from yolo_compress.pruning.channel import ChannelPruner
from yolo_compress.pruning.importance import TAYLOR_BATCHES
from yolo_compress.trainer import Technique, register


def check_prune_epoch(trainer) -> None:
    """Refuse a prune epoch the run never reaches, before any time is spent training."""
    c, epochs = trainer.compression, trainer.epochs
    if c.prune_at_epoch >= epochs:
        raise ArgumentError(f"'prune_at_epoch={c.prune_at_epoch}' is invalid with epochs={epochs}; "
                            f"valid: 1 to {epochs - 1} (0 disables pruning).")


@register
class ChannelPruning(Technique):
    """Prune once at `prune_at_epoch` (0 disables); optimizer, scheduler, EMA and criterion are rebuilt after.

    A run resumed past `prune_at_epoch` already holds the pruned model (its checkpoint is pruned), so nothing is
    pruned twice.
    """

    @classmethod
    def enabled(cls, args) -> bool:
        return bool(args.pruning and args.prune_at_epoch and args.pruning_method == "channel")

    def on_model_ready(self) -> None:
        check_prune_epoch(self.trainer)

    def on_epoch_start(self) -> None:
        trainer, c = self.trainer, self.trainer.compression
        if trainer.epoch != c.prune_at_epoch:
            return
        model = unwrap_model(trainer.model)
        # Start the pruned model from the EMA weights: they are what was validated and saved so far.
        model.load_state_dict(trainer.ema.ema.state_dict())
        batches = self._taylor_batches() if c.importance_metric == "taylor" else None
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(trainer.args.seed)  # importance=random must pick the same channels on every DDP rank
            plan = ChannelPruner(model, c.pruning_ratio, c.importance_metric, c.preserve_shortcuts, c.shortcut_config,
                                 c.round_to, c.global_pruning, batches=batches, prune_head=c.prune_head,
                                 head_ratio=c.head_ratio).prune()
        trainer.rebuild_after_surgery()
        # Fitness of the unpruned epochs is not comparable: best.pt must be one of the pruned epochs.
        trainer.best_fitness = None
        trainer.stopper.best_fitness, trainer.stopper.best_epoch = 0.0, trainer.epoch
        if RANK in {-1, 0}:
            LOGGER.info(f"yolo-compress: pruned at epoch {trainer.epoch + 1}: params {plan.params_before:,} -> "
                        f"{plan.params_after:,} ({1 - plan.params_after / plan.params_before:.1%} fewer)")
            (trainer.save_dir / "prune_plan.txt").write_text(plan.table() + "\n")

    def _taylor_batches(self) -> list[dict]:
        """A few raw training batches for the Taylor gradients (scaled and moved to the device by the scorer)."""
        batches = []
        for batch in self.trainer.train_loader:
            batches.append(batch)
            if len(batches) == TAYLOR_BATCHES:
                break
        return batches

    def metrics(self) -> dict[str, float]:
        return {"pruning/params": float(count_params(unwrap_model(self.trainer.model)))}
