"""Structural channel pruning of Ultralytics detectors with torch-pruning's dependency graph.

torch-pruning finds which channels are coupled (a "group") and removes them physically; this module adds what it
lacks for YOLO: the module rewrites (adapters), which outputs must stay fixed, shortcut-aware per-group ratios,
equal widths for both C2f halves (required by the stock exporter's ``forward_split``) and a readable plan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from collections.abc import Callable
from pathlib import Path

import torch
import torch_pruning as tp
from torch import nn

from yolo_compress.analysis import bn_stats
from yolo_compress.cfg import DEFAULTS
from yolo_compress.measure import count_params, gflops
from yolo_compress.pruning import adapters
from yolo_compress.pruning.importance import (
    METRICS,
    accumulate_gradients,
    build_importance,
    unfrozen,
)
from yolo_compress.pruning.plan import PruningPlan
from yolo_compress.pruning.shortcuts import classify, convs_in, load_multipliers

MIN_KEEP_FRACTION = 0.1  # global ranking never empties a group below this share of its channels


# Kept widths in multiples of 16 (default.yaml's round_to): ONNX Runtime's x86 blocked layout with AVX-512 takes a
# convolution's input in blocks of 16 channels and reorders around any other width (docs/pruning.md "Channel widths in
# steps of 16").
ROUND_TO: int = DEFAULTS["round_to"]


@dataclass
class GroupDecision:
    """One coupled channel group: what it touches, how much it keeps and which channels go."""

    name: str
    kind: str
    ratio: float
    before: int
    after: int
    scores: torch.Tensor = field(repr=False)
    root: nn.Module = field(repr=False)
    handler: object = field(repr=False)
    outputs: list[nn.Conv2d] = field(default_factory=list, repr=False)  # convs whose output channels are coupled
    norms: dict[str, int] = field(default_factory=dict, repr=False)  # stock BN name -> channel offset in it
    fixed: bool = False  # its ratio is set apart (the Detect head's): global ranking leaves it as it is

    def pruned_idxs(self) -> list[int]:
        """Indices of the lowest-scoring channels to remove."""
        n = self.before - self.after
        return sorted(torch.argsort(self.scores.float(), stable=True)[:n].tolist()) if n > 0 else []


def _unwrap(model: nn.Module) -> nn.Module:
    """Accept an Ultralytics ``YOLO`` wrapper, a DDP wrapper or the bare DetectionModel."""
    model = getattr(model, "module", model)
    inner = getattr(model, "model", None)
    return inner if isinstance(inner, nn.Module) and hasattr(inner, "yaml") else model


def _flatten_preds(out) -> list[torch.Tensor]:
    """Tensors of the raw head predictions, so the traced graph covers both YOLO26 branches but no post-processing."""
    preds = out[1] if isinstance(out, (tuple, list)) and len(out) == 2 and isinstance(out[1], dict) else out
    tensors: list[torch.Tensor] = []

    def walk(x) -> None:
        if isinstance(x, torch.Tensor):
            tensors.append(x)
        elif isinstance(x, dict):
            for k, v in x.items():
                if k != "feats":
                    walk(v)
        elif isinstance(x, (list, tuple)):
            for v in x:
                walk(v)

    walk(preds)
    return tensors


def stock_name(name: str) -> str:
    """Module name in stock form: both halves of a split C2f ``cv1`` report as ``cv1``."""
    return name.replace(".cv1a.", ".cv1.").replace(".cv1b.", ".cv1.")


def group_name(root: str, width: int) -> str:
    """Stock name of a group's root conv; a C2f half is named as a channel slice of the merged ``cv1``."""
    if ".cv1a." in root:
        return f"{stock_name(root)}[0:{width}]"
    if ".cv1b." in root:
        return f"{stock_name(root)}[{width}:{2 * width}]"
    return root


def conv_widths(model: nn.Module) -> dict[str, int]:
    """Output channels of every Conv2d by module name."""
    return {n: m.out_channels for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}


class ChannelPruner:
    """Remove the least important channels of a YOLO detector in place, keeping stock Ultralytics classes.

    Args:
        model: DetectionModel (or ``YOLO`` wrapper) to prune in place.
        pruning_ratio: share of channels to remove from each group, 0 < r < 1.
        importance_metric: one of l1, l2, bn, taylor, random.
        preserve_shortcuts: scale the ratio per group type with the multipliers of ``config_file``.
        config_file: shortcut multiplier YAML path or bundled name (``yolo26``).
        round_to: kept channels per group are rounded up to a multiple of this (16: ONNX Runtime's blocked layout
            with AVX-512 needs input channels in multiples of 16, docs/pruning.md "Channel widths in steps of 16").
        global_pruning: rank channels across groups (normalised scores) instead of the same ratio per group.
        imgsz: size of the dummy image used to trace the graph.
        batches: iterable of Ultralytics training batches, needed by ``taylor``.
        layer_ratios: per-group ratios by group name (as in the plan), overriding the ratio above (``suggest``).
        prune_head: also prune the Detect head's inner convolutions at ``pruning_ratio``. Off (the default), they keep
            their widths while the neck outputs feeding them are pruned like any other layer (docs/pruning.md "The
            head's widths and its inputs" measured both).
        head_ratio: the head's inner convolutions pruned at this ratio instead (None: 0, or ``pruning_ratio`` with
            ``prune_head``); global ranking leaves the head at it unless ``prune_head``.
    """

    def __init__(
        self,
        model: nn.Module,
        pruning_ratio: float = 0.3,
        importance_metric: str = "l2",
        preserve_shortcuts: bool = False,
        config_file: str | Path | None = "yolo26",
        round_to: int = ROUND_TO,
        global_pruning: bool = False,
        imgsz: int = 64,
        batches=None,
        layer_ratios: dict[str, float] | None = None,
        prune_head: bool = False,
        head_ratio: float | None = None,
    ) -> None:
        if not 0 <= pruning_ratio < 1:
            raise ValueError(f"pruning_ratio={pruning_ratio} is invalid; accepted: 0 <= ratio < 1 (0 = analyse only)")
        if importance_metric not in METRICS:
            raise ValueError(f"importance_metric={importance_metric!r} is invalid; accepted: {', '.join(METRICS)}")
        if round_to < 1:
            raise ValueError(f"round_to={round_to} is invalid; accepted: integer >= 1")
        if head_ratio is not None and not 0 <= head_ratio < 1:
            raise ValueError(f"head_ratio={head_ratio} is invalid; accepted: 0 <= ratio < 1")
        if importance_metric == "taylor" and batches is None:
            raise ValueError("importance_metric='taylor' needs data: pass data=<data.yaml> (gradients of the loss)")
        self.model = _unwrap(model)
        adapters.head_of(self.model)
        self.pruning_ratio = pruning_ratio
        self.importance_metric = importance_metric
        self.preserve_shortcuts = preserve_shortcuts
        self.multipliers = load_multipliers(config_file)
        self.round_to = round_to
        self.global_pruning = global_pruning
        self.imgsz = imgsz
        self.batches = batches
        self.layer_ratios = dict(layer_ratios or {})
        if head_ratio is None and not prune_head:
            head_ratio = 0.0  # the head keeps its widths; None: its groups take pruning_ratio like any other
        self.head_ratio = head_ratio
        self.shortcut_layers: dict[str, str] = {}  # group -> shortcut type, for groups that are not "regular"
        self.layer_kinds: dict[str, str] = {}  # conv name -> type(s) of the groups its outputs belong to
        self.graph: tp.DependencyGraph | None = None  # only alive during prune()
        self._channels_before = self._total_channels()

    def _total_channels(self) -> int:
        return sum(m.num_features for m in self.model.modules() if isinstance(m, nn.BatchNorm2d))

    def get_model_sparsity(self, threshold: float = 1e-2) -> dict[str, float]:
        """BN-gamma channel sparsity (before pruning) and the share of channels physically removed so far."""
        return {
            "channel_sparsity": bn_stats(self.model, threshold)["bn_sparsity"],
            "pruned_channel_ratio": 1 - self._total_channels() / self._channels_before,
            "params": float(count_params(self.model)),
        }

    def prune(self) -> PruningPlan:
        """Prune in place and return the plan. The model comes back in stock classes, in its original mode."""
        model = self.model
        was_training = model.training
        widths_before, params_before = conv_widths(model), count_params(model)
        device = next(model.parameters()).device
        model.eval()
        adapters.to_prunable(model)
        try:
            decisions = self._decide(model, device)
            for d in decisions:
                idxs = d.pruned_idxs()
                if idxs:
                    self.graph.get_pruning_group(d.root, d.handler, idxs).prune()
        finally:
            adapters.to_stock(model)
            model.zero_grad(set_to_none=True)
            self.graph = None
        model.train(was_training)
        return self._plan(decisions, widths_before, params_before)

    def _decide(self, model: nn.Module, device: torch.device) -> list[GroupDecision]:
        """Build the dependency graph, score every prunable group and fix how many channels each keeps.

        Torch-Pruning's graph, groups, importance and surgery are used as they are; its pruner's decision step
        (`tp.pruner.BasePruner`: a ratio per layer or a global ranking, `round_to`) is not, because the decisions
        here need what it does not express: a ratio per group *type* (residual / csp / fusion / attention, from
        which convolutions a group touches), suggest's per-group ratios by group name, keep floors under global
        ranking, both C2f halves at one width (Ultralytics' exporter splits `cv1` in equal halves), and the whole
        plan known before any channel is removed (the plan tables, and suggest's dry runs)."""
        example = torch.randn(1, 3, self.imgsz, self.imgsz, device=device)
        fusion = adapters.fusion_consumers(model, example)
        with unfrozen(model):
            self.graph = tp.DependencyGraph().build_dependency(
                model, example_inputs=example, output_transform=_flatten_preds, verbose=False)
        if self.importance_metric == "taylor":
            accumulate_gradients(model, self.batches)
        importance = build_importance(self.importance_metric)
        residual, csp = adapters.residual_convs(model), adapters.csp_convs(model)
        attention = convs_in(adapters.attention_modules(model))
        names = {m: n for n, m in model.named_modules()}
        head = set(adapters.head_of(model).modules())
        offsets = {m.cv1b.bn: m.cv1a.conv.out_channels for m in model.modules() if isinstance(m, adapters.SplitC2f)}
        decisions = []
        for group in self.graph.get_all_groups(ignored_layers=adapters.pinned_convs(model),
                                               root_module_types=(nn.Conv2d,)):
            touched = self._touched(group, residual, csp, fusion, attention)
            kind = classify(touched, self.multipliers)
            ratio = self.pruning_ratio * (self.multipliers[kind] if self.preserve_shortcuts else 1.0)
            root = group[0].dep.target.module
            fixed = self.head_ratio is not None and root in head
            if fixed:
                ratio = self.head_ratio
            scores = importance(group)
            if scores is None:  # e.g. bn importance on a group without BatchNorm
                scores = build_importance("l1")(group)
            width, name = len(scores), group_name(names[root], len(scores))
            ratio = self.layer_ratios.get(name, ratio)
            outputs = [dep.target.module for dep, _ in group if isinstance(dep.target.module, nn.Conv2d)
                       and self.graph.is_out_channel_pruning_fn(dep.handler)]
            norms = {stock_name(names[dep.target.module]): offsets.get(dep.target.module, 0) for dep, _ in group
                     if isinstance(dep.target.module, nn.BatchNorm2d)}
            decisions.append(GroupDecision(name, kind, ratio, width, self._keep(width, ratio, name),
                                           scores.detach().cpu(), root, group[0].dep.handler, outputs, norms, fixed))
            if kind != "regular":
                self.shortcut_layers[name] = kind
        kinds: dict[str, set[str]] = {}
        for d in decisions:
            for conv in d.outputs:
                kinds.setdefault(stock_name(names[conv]), set()).add(d.kind)
        self.layer_kinds = {name: "/".join(sorted(k)) for name, k in kinds.items()}
        if self.global_pruning:
            self._rank_globally([d for d in decisions if not d.fixed])
        self._equalise_c2f_halves(model, decisions)
        return decisions

    def _touched(self, group, residual, csp, fusion, attention) -> set[str]:
        """Shortcut types a group's coupled layers belong to."""
        touched = set()
        for dep, _ in group:
            module = dep.target.module
            out = self.graph.is_out_channel_pruning_fn(dep.handler)
            if out and module in residual:
                touched.add("residual")
            if out and module in csp:
                touched.add("csp")
            if not out and module in fusion:
                touched.add("fusion")
            if module in attention:
                touched.add("attention")
        return touched

    def _keep(self, width: int, ratio: float, name: str) -> int:
        """Channels kept for ``ratio``, rounded up to ``round_to``; refuses ratios that would empty the layer."""
        if ratio >= 1:
            raise ValueError(f"pruning ratio {ratio:.3g} for {name} would remove all {width} channels; "
                             "accepted: pruning_ratio * shortcut multiplier < 1")
        keep = math.ceil(width * (1 - ratio) - 1e-9)
        keep = math.ceil(keep / self.round_to) * self.round_to
        return min(width, max(keep, 1))

    def _rank_globally(self, decisions: list[GroupDecision]) -> None:
        """Re-distribute the same total number of removed channels by globally ranked, mean-normalised scores.

        Shortcut multipliers divide the normalised scores, so protected group types look more important.
        """
        budget = sum(d.before - d.after for d in decisions)
        entries = []
        for gi, d in enumerate(decisions):
            norm = d.scores.float() / (d.scores.float().abs().mean() + 1e-12)
            if self.preserve_shortcuts:
                norm = norm / max(self.multipliers[d.kind], 1e-6)
            limit = d.before - max(1, math.ceil(d.before * MIN_KEEP_FRACTION))
            entries += [(float(s), gi) for s in sorted(norm.tolist())[:limit]]
        entries.sort(key=lambda e: e[0])
        removed = [0] * len(decisions)
        for _, gi in entries[:budget]:
            removed[gi] += 1
        for d, n in zip(decisions, removed):
            keep = math.ceil((d.before - n) / self.round_to) * self.round_to
            d.after = min(d.before, keep)
            d.ratio = 1 - d.after / d.before

    @staticmethod
    def _equalise_c2f_halves(model: nn.Module, decisions: list[GroupDecision]) -> None:
        """Give both halves of every C2f split the larger kept width (stock ``forward_split`` needs equal halves)."""
        by_root = {conv: d for d in decisions for conv in d.outputs}
        for m in model.modules():
            if isinstance(m, adapters.SplitC2f):
                a, b = by_root.get(m.cv1a.conv), by_root.get(m.cv1b.conv)
                if a is None or b is None:  # one half is fixed, so both stay whole
                    for d in (a, b):
                        if d is not None:
                            d.after = d.before
                    continue
                a.after = b.after = max(a.after, b.after)

    def _plan(self, decisions: list[GroupDecision], widths_before: dict[str, int], params_before: int) -> PruningPlan:
        """Summarise decisions per group and per stock layer."""
        widths_after = conv_widths(self.model)
        groups = [{"group": d.name, "type": d.kind, "ratio": round(d.ratio, 4), "before": d.before,
                   "after": d.after, "norms": d.norms,
                   "removed": {bn: [i + off for i in d.pruned_idxs()] for bn, off in d.norms.items()}}
                  for d in decisions]
        layers = [{"layer": n.removesuffix(".conv"), "type": self.layer_kinds.get(n, "fixed"),
                   "before": b, "after": widths_after[n]} for n, b in widths_before.items()]
        return PruningPlan(groups, layers, params_before, count_params(self.model))


def prune_model(model: nn.Module, pruning_ratio: float = 0.3, importance_metric: str = "l2", **kwargs) -> PruningPlan:
    """Prune ``model`` in place with a ``ChannelPruner`` and return the plan."""
    return ChannelPruner(model, pruning_ratio, importance_metric, **kwargs).prune()


RATIO_SEARCH_STEPS = 10  # bisection steps of ratio_for_flops: the ratio to within 0.001, on ~1 s pruned copies each


def ratio_for_flops(model: nn.Module, target: float, imgsz: int, prune: Callable[[nn.Module, float], object],
                    most: float = 0.95) -> float:
    """The channel pruning ratio whose pruned model keeps the share of `model`'s GFLOPs at `imgsz` closest to `target`.

    `prune(copy, ratio)` prunes a copy in place. Bisection over the ratio, since FLOPs fall as it grows, finds the
    step where the kept share crosses the target; the side of the step nearer the target wins. Kept widths move in
    steps of round_to, so FLOPs jump: on the vehicles YOLO26n at 320, ratios 0.38-0.49 keep 62-65 % and 0.5 keeps 48 %
    (every 16-channel group halves at once), and "at most 60 %" would have pruned like 50 %. Each step prunes a fresh
    copy; the model itself is not touched. Torch-Pruning's pruners take a ratio, not a FLOPs budget, hence the search.
    """
    full = gflops(model, imgsz)

    def kept(ratio: float) -> float:
        copy = adapters.clean_copy(model)
        prune(copy, ratio)
        return gflops(copy, imgsz) / full

    lo, hi, kept_lo, kept_hi = 0.0, most, 1.0, kept(most)
    for _ in range(RATIO_SEARCH_STEPS):
        mid = (lo + hi) / 2
        k = kept(mid)
        lo, hi, kept_lo, kept_hi = (mid, hi, k, kept_hi) if k > target else (lo, mid, kept_lo, k)
    closer_lo = lo > 0 and abs(kept_lo - target) < abs(kept_hi - target)
    return round(lo if closer_lo else hi, 4)
