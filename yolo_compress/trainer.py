"""CompressionTrainer: Ultralytics' DetectionTrainer with hook points for compression techniques.

The trainer only wires hooks; each technique (sparsity, pruning, distillation) lives in its own module and plugs in
through `Technique`. With no compression argument set, a run is a stock `yolo train` run, except that CPU training
uses every core (`_use_all_cores`).
"""

from __future__ import annotations

import contextlib
import importlib
import math
import shutil
from copy import deepcopy
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import torch
from torch import nn
from ultralytics.cfg import DEFAULT_CFG_DICT
from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.utils import DEFAULT_CFG, LOGGER, RANK, YAML
from ultralytics.utils.torch_utils import ModelEMA, unwrap_model

from yolo_compress import checkpoints
from yolo_compress.cfg import DEFAULTS, TRAIN_ARGS, ArgumentError, unknown_argument, validate
from yolo_compress.device import use_all_cores


EMA_MAX_DECAY = 0.9999  # Ultralytics' ModelEMA default


class Technique:
    """A compression technique plugged into CompressionTrainer; every hook is optional.

    Hooks run on every DDP rank, so whatever they change on the model must be deterministic across ranks.
    """

    def __init__(self, trainer: CompressionTrainer):
        self.trainer = trainer

    @classmethod
    def enabled(cls, args: SimpleNamespace) -> bool:
        """Whether the compression arguments ask for this technique."""
        return False

    def on_model_ready(self) -> None:
        """Model built and on its device; optimizer, EMA and DDP wrapper not built yet (register adapters here)."""

    def loss(self, batch: dict, preds: Any) -> dict[str, torch.Tensor]:
        """Extra scalar loss terms on Ultralytics' scale (the detection loss is summed over the batch)."""
        return {}

    def before_optimizer_step(self, grad_scale: float) -> None:
        """Gradients are accumulated and all-reduced, still multiplied by the AMP scale `grad_scale`."""

    def on_epoch_start(self) -> None:
        """Start of an epoch; model surgery here must be followed by `trainer.rebuild_after_surgery()`."""

    def metrics(self) -> dict[str, float]:
        """Extra results.csv columns, the same keys every epoch."""
        return {}

    def on_train_end(self) -> None:
        """After the final evaluation (plots, summaries)."""

    def saving(self) -> contextlib.AbstractContextManager:
        """Context around checkpoint saving, e.g. to strip training-only modules from the EMA model."""
        return contextlib.nullcontext()


TECHNIQUES: list[type[Technique]] = []  # filled by register(), in PLUGINS order
# The modules whose techniques every trainer offers, in hook order: pruning changes shapes at an epoch start, and
# distillation then rebuilds its adapters for the new widths. Named, not imported: techniques import this engine,
# never the reverse; load_plugins() imports them when a trainer is built (also in DDP workers, which import only
# this module).
PLUGINS = ("yolo_compress.sparsity", "yolo_compress.pruning.technique", "yolo_compress.pruning.layer_technique",
           "yolo_compress.distill.technique")


def register(technique: type[Technique]) -> type[Technique]:
    """Class decorator a technique module applies to its Technique, so that trainers run its hooks."""
    if technique not in TECHNIQUES:
        TECHNIQUES.append(technique)
        order = {name: i for i, name in enumerate(PLUGINS)}
        TECHNIQUES.sort(key=lambda t: order.get(t.__module__, len(order)))
    return technique


def load_plugins() -> None:
    """Import every technique module of PLUGINS (each registers itself on import)."""
    for name in PLUGINS:
        importlib.import_module(name)


class _CompressionCriterion:
    """Wraps the model's detection criterion and appends the techniques' loss terms.

    Terms are concatenated to the loss vector rather than added, because the trainer sums that vector: adding a
    scalar would broadcast it onto every component.
    """

    def __init__(self, base: Any, techniques: list[Technique]):
        self.base = base
        self.techniques = techniques

    def __call__(self, preds: Any, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss, items = self.base(preds, batch)
        terms = {k: v for t in self.techniques for k, v in t.loss(batch, preds).items()}
        if terms:
            loss = torch.cat([loss.reshape(-1), torch.stack([v.reshape(()) for v in terms.values()])])
            items = {**items, **{k: v.detach() for k, v in terms.items()}}
        return loss, items

    def __getattr__(self, name: str) -> Any:
        return getattr(self.base, name)


def _compression_args_of(ckpt_path: str | Path) -> dict[str, Any]:
    """Compression arguments stored in a checkpoint's train_args (stock loaders filter them out of model.args)."""
    ckpt = checkpoints.load_dict(ckpt_path)
    return {k: v for k, v in (ckpt.get("train_args") or {}).items() if k in DEFAULTS}


def _shapes(model: nn.Module) -> dict[str, torch.Size]:
    return {k: v.shape for k, v in model.state_dict().items()}


def _is_stock(weights: nn.Module) -> bool:
    """Whether a checkpoint's model has the shapes its own yaml builds (with its own nc), i.e. is not compressed."""
    from ultralytics.nn.tasks import DetectionModel

    nc = int(weights.model[-1].nc)
    stock = DetectionModel(deepcopy(weights.yaml), ch=weights.yaml.get("channels", 3), nc=nc, verbose=False)
    return _shapes(stock) == _shapes(weights)


def reset_class_outputs(model: nn.Module, nc: int) -> None:
    """Give a detection model ``nc`` classes by replacing the last convolution of every class branch (one-to-many
    and, on end-to-end heads, one-to-one) with a new one initialised as Ultralytics initialises class biases; every
    other layer, pruned widths included, is kept. Stock transfer learning cannot do this for a pruned model: it
    rebuilds the full-width architecture from the yaml."""
    head = model.model[-1]
    branches = [head.one2many["cls_head"]]
    if getattr(head, "one2one_cv3", None) is not None:
        branches.append(head.one2one["cls_head"])
    for levels in branches:
        for i, branch in enumerate(levels):
            old = branch[-1]
            new = nn.Conv2d(old.in_channels, nc, 1).to(device=old.weight.device, dtype=old.weight.dtype)
            nn.init.constant_(new.bias, math.log(5 / nc / (640 / float(head.stride[i])) ** 2))
            branch[-1] = new
    head.nc, head.no = nc, nc + head.reg_max * 4
    model.nc = nc
    model.yaml["nc"] = nc


class CompressionTrainer(DetectionTrainer):
    """DetectionTrainer that accepts the compression arguments and runs the enabled techniques' hooks."""

    compression_args: ClassVar[tuple[str, ...]] = TRAIN_ARGS

    def __init__(self, cfg=DEFAULT_CFG, overrides: dict | None = None, _callbacks: dict | None = None):
        overrides = dict(overrides or {})
        given = split_compression_args(overrides)
        _refuse_inputs_in_save_dir(overrides, given)
        super().__init__(cfg, overrides, _callbacks)
        stored = _compression_args_of(self.args.model) if self.resume else {}
        values = {**DEFAULTS, **stored, **given}
        values = {k: values[k] for k in self.compression_args}
        if given or stored:
            # Kept on self.args so DDP workers (rebuilt from vars(args)) and resumed runs see them too.
            for k, v in values.items():
                setattr(self.args, k, v)
            if RANK in {-1, 0}:
                YAML.save(self.save_dir / "args.yaml", vars(self.args))
        self.compression = SimpleNamespace(**values)
        load_plugins()
        with self._refusal_leaves_no_run():
            self.techniques = [t(self) for t in TECHNIQUES if t.enabled(self.compression)]
        hooks = (("on_pretrain_routine_end", self._set_ema_warmup), ("on_train_start", self._install_criterion),
                 ("on_train_epoch_start", self._epoch_start))
        for event, hook in hooks:
            self.add_callback(event, hook)

    @contextlib.contextmanager
    def stock_args(self):
        """self.args without the compression arguments, for Ultralytics code that re-validates its arguments."""
        saved = {k: vars(self.args).pop(k) for k in self.compression_args if k in vars(self.args)}
        try:
            yield self.args
        finally:
            vars(self.args).update(saved)

    def get_validator(self):
        with self.stock_args():
            return super().get_validator()

    def get_model(self, cfg=None, weights=None, verbose=True):
        """Build the model; keep a checkpoint's own architecture when it differs from its yaml (e.g. pruned).

        Stock Ultralytics rebuilds from the yaml and loads only matching tensors, which would silently undo pruning.
        """
        if not isinstance(weights, nn.Module) or not getattr(weights, "yaml", None) or _is_stock(weights):
            return super().get_model(cfg, weights, verbose)  # stock: rebuilt with data's nc, matching tensors loaded
        LOGGER.info("yolo-compress: keeping the checkpoint's compressed architecture (not rebuilding from yaml)")
        model = deepcopy(weights).float()
        nc, new_nc = int(model.model[-1].nc), int(self.data["nc"])
        if nc != new_nc:
            reset_class_outputs(model, new_nc)
            LOGGER.info(f"yolo-compress: 'data' has {new_nc} classes, the checkpoint {nc}: pruned widths kept, class "
                        "outputs re-initialised for the new classes")
        for p in model.parameters():
            p.requires_grad_(True)
        return self.set_model_names_for_load(model)

    def setup_model(self):
        """Hand the model to the techniques once it exists, before optimizer, EMA and DDP wrapper (all paths)."""
        ckpt = super().setup_model()
        self.model = self.model.to(self.device)
        with self._refusal_leaves_no_run():
            for t in self.techniques:
                t.on_model_ready()
        return ckpt

    @contextlib.contextmanager
    def _refusal_leaves_no_run(self):
        """Remove the run folder Ultralytics created on construction when a technique refuses its arguments.

        Checks such as an incompatible teacher need the built trainer (data, model), so they fail after the folder
        exists; a refused run must not leave an empty run behind. A folder holding results or weights is kept.
        """
        try:
            yield
        except ArgumentError:
            fresh = not self.resume and not (self.save_dir / "results.csv").exists() and not any(self.wdir.glob("*"))
            if RANK in {-1, 0} and fresh:
                shutil.rmtree(self.save_dir, ignore_errors=True)
            raise

    def _set_ema_warmup(self, trainer=None) -> None:
        """Ultralytics' EMA decay ramp, ``d(n) = 0.9999 * (1 - exp(-n / tau))``, with tau = ``ema_tau`` optimizer steps.
        Set on the EMA Ultralytics built (a resumed run's averaged weights and step count kept)."""
        tau = self.compression.ema_tau
        self.ema.decay = lambda n: EMA_MAX_DECAY * (1 - math.exp(-n / tau))

    def _install_criterion(self, trainer=None) -> None:
        model = unwrap_model(self.model)
        base = model.criterion if getattr(model, "criterion", None) is not None else model.init_criterion()
        if isinstance(base, _CompressionCriterion):
            base = base.base
        model.criterion = _CompressionCriterion(base, self.techniques) if self.techniques else base

    def _use_all_cores(self) -> None:
        """Ultralytics trains on CPU with 0 data-loading workers yet keeps a core free for them (device.use_all_cores).
        Set per epoch because Ultralytics' select_device resets the thread count."""
        if self.args.workers == 0:
            use_all_cores(self.device)

    def _epoch_start(self, trainer=None) -> None:
        self._use_all_cores()
        for t in self.techniques:
            t.on_epoch_start()

    def optimizer_step(self):
        """Give techniques the accumulated gradients before Ultralytics unscales, clips and steps."""
        if self.techniques:
            scale = float(self.scaler.get_scale()) if self.scaler.is_enabled() else 1.0
            for t in self.techniques:
                t.before_optimizer_step(scale)
        super().optimizer_step()

    def save_metrics(self, metrics):
        """Append the techniques' columns to results.csv."""
        for t in self.techniques:
            metrics = {**metrics, **t.metrics()}
        super().save_metrics(metrics)

    def save_model(self):
        with contextlib.ExitStack() as stack:
            for t in self.techniques:
                stack.enter_context(t.saving())
            return super().save_model()

    def final_eval(self):
        super().final_eval()
        for t in self.techniques:
            t.on_train_end()

    def rebuild_after_surgery(self) -> None:
        """After a technique changed the model's shapes: rebuild optimizer, scheduler, EMA, DDP wrapper, criterion.

        The AMP scaler is kept: it holds a scale, no per-parameter state, and resets its optimizer state each step.
        """
        model = unwrap_model(self.model)
        model.criterion = None
        if self.world_size > 1:
            self.model = nn.parallel.DistributedDataParallel(
                model, device_ids=[self.device.index], find_unused_parameters=True
            )
        else:
            self.model = model
        accumulate = max(round(self.args.nbs / self.batch_size), 1)
        iterations = math.ceil(len(self.train_loader.dataset) / max(self.batch_size, self.args.nbs)) * self.epochs
        self.optimizer = self.build_optimizer(
            model=self.model,
            name=self.args.optimizer,
            lr=self.args.lr0,
            momentum=self.args.momentum,
            decay=self.args.weight_decay * self.batch_size * accumulate / self.args.nbs,
            iterations=iterations,
        )
        self._setup_scheduler()
        self.scheduler.last_epoch = self.epoch - 1
        self.ema = ModelEMA(self.model, decay=EMA_MAX_DECAY, tau=self.compression.ema_tau)
        self._install_criterion()


def split_compression_args(overrides: dict[str, Any], allowed: tuple[str, ...] = TRAIN_ARGS) -> dict[str, Any]:
    """Pop and validate the compression arguments; fail on names neither yolo-compress nor Ultralytics knows."""
    for k in overrides:
        if k not in allowed and k not in DEFAULT_CFG_DICT and k not in {"cfg", "save_dir"}:
            raise unknown_argument(k, (*allowed, *DEFAULT_CFG_DICT))
    return validate({k: overrides.pop(k) for k in list(overrides) if k in allowed}, allowed)


def _refuse_inputs_in_save_dir(overrides: dict[str, Any], given: dict[str, Any]) -> None:
    """Refuse a run whose folder holds its own inputs: with exist_ok=True the run writes weights/best.pt and friends
    into an existing folder, which would overwrite the model it is training from (a resumed run is meant to)."""
    if overrides.get("resume") or not overrides.get("exist_ok"):
        return  # a new folder (Ultralytics numbers it) holds nothing yet
    from ultralytics.cfg import get_cfg, get_save_dir

    save_dir = get_save_dir(get_cfg(DEFAULT_CFG, {k: v for k, v in overrides.items() if k in DEFAULT_CFG_DICT}))
    for key, value in (("model", overrides.get("model")), ("data", overrides.get("data")),
                       ("teacher_model", given.get("teacher_model"))):
        if isinstance(value, (str, Path)) and Path(value).exists() and Path(value).resolve().is_relative_to(
                save_dir.resolve()):
            raise ArgumentError(f"'{key}={value}' lies inside this run's folder {save_dir}, which exist_ok=True "
                                "would overwrite; choose another project/name.")


def check_train_args(args: dict[str, Any]) -> None:
    """A train run's compression and Ultralytics arguments checked as the trainer will, without building it (a
    pipeline checks every stage this way before the first one runs)."""
    from ultralytics.cfg import get_cfg

    overrides = {k: v for k, v in args.items() if k != "cfg"}
    split_compression_args(overrides)
    get_cfg(DEFAULT_CFG, overrides)
