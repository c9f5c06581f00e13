"""Rewrites of Ultralytics modules into a form torch-pruning can trace, and the way back to stock classes.

Torch-pruning's dependency graph cannot follow ``Tensor.chunk`` inside C2f/C3k2 (IndexError on yolov8n, runaway
tracing on 11n/12n/26n), so the single ``cv1`` producing both CSP halves is split into two explicit convolutions
(yolo_compress.csp) while pruning and merged back afterwards. Everything here is YOLO specific, which is why torch-pruning lacks it.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from ultralytics.nn.modules.block import (
    C2PSA,
    PSA,
    SPPF,
    A2C2f,
    AAttn,
    ABlock,
    Attention,
    Bottleneck,
    C2f,
    PSABlock,
)
from ultralytics.nn.modules.conv import Concat, Conv
from ultralytics.nn.modules.head import Detect

from yolo_compress.csp import is_chunk_c2f, merge_convs, split_conv

LAYER_ATTRS = ("i", "f", "type", "np")  # attributes DetectionModel._predict_once and model.info() read


class SplitC2f(nn.Module):
    """C2f/C3k2 with ``cv1`` held as two convolutions (``cv1a`` bypass half, ``cv1b`` half feeding ``m``)."""

    def __init__(self, stock: C2f) -> None:
        """Take over the stock module's children; the stock shell is kept unregistered for ``to_stock``."""
        super().__init__()
        self.cv1a, self.cv1b = split_conv(stock.cv1, (stock.c, stock.c))
        self.m = stock.m
        self.cv2 = stock.cv2
        for name in LAYER_ATTRS:
            if hasattr(stock, name):
                setattr(self, name, getattr(stock, name))
        object.__setattr__(self, "_stock", stock)  # not a submodule: the graph must not see the old cv1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Same computation as ``C2f.forward`` with the chunk replaced by two convolutions."""
        y = [self.cv1a(x), self.cv1b(x)]
        y.extend(m(y[-1]) for m in self.m)
        return self.cv2(torch.cat(y, 1))

    def to_stock(self) -> C2f:
        """Return the original class with merged ``cv1`` and ``c`` matching the (possibly pruned) halves."""
        width_a, width_b = self.cv1a.conv.out_channels, self.cv1b.conv.out_channels
        if width_a != width_b:
            raise RuntimeError(f"C2f halves must keep equal widths for stock export, got {width_a} and {width_b}")
        stock = self._stock
        stock.cv1 = merge_convs(self.cv1a, self.cv1b)
        stock.m, stock.cv2, stock.c = self.m, self.cv2, width_a
        for name in LAYER_ATTRS:
            if hasattr(self, name):
                setattr(stock, name, getattr(self, name))
        return stock


def _replace_children(root: nn.Module, fn) -> int:
    """Replace every descendant ``m`` for which ``fn(m)`` returns a module; return the number replaced."""
    count = 0
    for name, child in list(root.named_children()):
        new = fn(child)
        if new is not None:
            setattr(root, name, new)
            count += 1
        else:
            count += _replace_children(child, fn)
    return count


def to_prunable(model: nn.Module) -> int:
    """Rewrite ``model`` in place into its traceable form; return the number of rewritten modules."""
    return _replace_children(model, lambda m: SplitC2f(m) if is_chunk_c2f(m) else None)


def to_stock(model: nn.Module) -> int:
    """Undo ``to_prunable`` in place, producing stock Ultralytics classes with consistent attributes."""
    count = _replace_children(model, lambda m: m.to_stock() if isinstance(m, SplitC2f) else None)
    for layer in getattr(model, "model", []):
        if hasattr(layer, "np"):
            layer.np = sum(p.numel() for p in layer.parameters())
    return count


def head_of(model: nn.Module) -> Detect:
    """Return the detection head, refusing models whose head this engine does not know how to keep consistent."""
    head = model.model[-1] if hasattr(model, "model") else None
    if type(head) is not Detect:
        raise ValueError(
            f"model head {type(head).__name__} is not supported for channel pruning; accepted: detection models "
            "(YOLOv8, YOLO11, YOLO12, YOLO26 Detect)"
        )
    return head


def pinned_convs(model: nn.Module) -> list[nn.Conv2d]:
    """Convolutions whose output channels must not change, so any group containing them is left whole.

    The Detect head's inner convolutions are not pinned: pinning them would also pin the neck outputs that the
    depthwise class convolutions of YOLO11 and YOLO26 share channels with. ChannelPruner keeps the head's widths by
    giving its groups their own ratio (``head_ratio``, 0 by default) instead.

    - Detect's final box/class convs (both branches) and DFL fix the output format.
    - Attention/AAttn ``qkv`` and ``pe`` outputs are reshaped into heads by ``num_heads``/``head_dim``.
    - Attention's ``proj`` output is the PSABlock stream, which ``Attention.forward`` reshapes with its input width.
    """
    pinned: list[nn.Conv2d] = []
    head = head_of(model)
    for branch in ("cv2", "cv3", "one2one_cv2", "one2one_cv3"):
        for seq in getattr(head, branch, None) or []:
            pinned.append(seq[-1])
    if isinstance(head.dfl, nn.Module) and hasattr(head.dfl, "conv"):
        pinned.append(head.dfl.conv)
    for m in model.modules():
        if isinstance(m, (Attention, AAttn)):
            pinned += [m.qkv.conv, m.pe.conv]
        if isinstance(m, Attention):
            pinned.append(m.proj.conv)
    return pinned


def residual_convs(model: nn.Module) -> set[nn.Conv2d]:
    """Convolutions whose output is summed with a shortcut (channels coupled across a residual add)."""
    out: set[nn.Conv2d] = set()
    for m in model.modules():
        if isinstance(m, Bottleneck) and m.add:
            out.add(m.cv2.conv)
        elif isinstance(m, PSABlock) and m.add:
            out |= {m.attn.proj.conv, m.ffn[-1].conv}
        elif isinstance(m, ABlock):
            out |= {m.attn.proj.conv, m.mlp[-1].conv}
        elif isinstance(m, SPPF) and getattr(m, "add", False):
            out.add(m.cv2.conv)
        elif isinstance(m, A2C2f) and m.gamma is not None:
            out.add(m.cv2.conv)
    return out


def csp_convs(model: nn.Module) -> set[nn.Conv2d]:
    """Convolutions producing the halves of a CSP split that meet again in the block's concat."""
    out: set[nn.Conv2d] = set()
    for m in model.modules():
        if isinstance(m, SplitC2f):
            out |= {m.cv1a.conv, m.cv1b.conv}
        elif hasattr(m, "cv3") and hasattr(m, "cv1") and hasattr(m, "cv2") and isinstance(m.cv1, Conv):
            out |= {m.cv1.conv, m.cv2.conv}  # C3 / C3k: two parallel 1x1 convs concatenated before cv3
        elif isinstance(m, (C2PSA, PSA, A2C2f)):
            out.add(m.cv1.conv)
    return out


def attention_modules(model: nn.Module) -> list[nn.Module]:
    """Modules whose inner convolutions count as attention for shortcut-aware ratios."""
    return [m for m in model.modules() if isinstance(m, (C2PSA, PSA, PSABlock, ABlock)) or (
        isinstance(m, A2C2f) and any(isinstance(b, ABlock) for b in m.modules()))]


def fusion_consumers(model: nn.Module, example: torch.Tensor) -> set[nn.Conv2d]:
    """Convolutions reading a neck ``Concat`` output directly (their input channels are fused features).

    Found with one hooked forward pass: a conv consumes the concat when its input is the very tensor the layer
    after the Concat received.
    """
    layers = list(model.model)
    concat_ids = {i for i, m in enumerate(layers) if isinstance(m, Concat)}
    found: set[nn.Conv2d] = set()
    handles = []
    for j, layer in enumerate(layers):
        sources = [layer.f] if isinstance(layer.f, int) else list(layer.f)
        if not any((j + s if s < 0 else s) in concat_ids for s in sources) or isinstance(layer, Concat):
            continue
        state: dict = {}
        handles.append(layer.register_forward_pre_hook(lambda _m, args, st=state: st.update(x=args[0])))
        for conv in (c for c in layer.modules() if isinstance(c, nn.Conv2d)):
            handles.append(conv.register_forward_pre_hook(
                lambda c, args, st=state: found.add(c) if args[0] is st.get("x") else None))
    try:
        with torch.no_grad():
            model(example)
    finally:
        for h in handles:
            h.remove()
    return found


def clean_copy(model: nn.Module) -> nn.Module:
    """Deep copy without the training criterion (during training it references the trainer and its data loaders)."""
    criterion = model.__dict__.pop("criterion", None)
    try:
        return copy.deepcopy(model)
    finally:
        if criterion is not None:
            model.criterion = criterion
