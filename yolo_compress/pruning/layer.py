"""Layer pruning: remove whole inner blocks (Bottleneck, C3k, PSABlock, ...) and keep stock Ultralytics modules.

Channel pruning of a small model leaves as many (thinner) layers, each with its launch and memory overhead; removing
blocks removes that overhead too. Two kinds of blocks exist in YOLOv8/11/12/26:

- ``csp``: an element of the ``m`` list of a C2f-family module (C2f, C3k2). Every element's output is concatenated
  into ``cv2``, so removing element i also removes its input channels of ``cv2``. A residual element (its output is
  its input plus a branch) is replaced by identity: its ``cv2`` weights are folded onto the channels of its input,
  which the concat already holds, so a block whose branch is zero is removed exactly.
- ``sequential``: a residual element of an ``nn.Sequential`` (Bottlenecks in C3k/C3, PSABlocks in C2PSA, the
  Bottleneck/PSABlock pair of an attention C3k2); dropping it from the Sequential is replacing it by identity.

torch-pruning removes channels, not layers, hence this hand-written surgery.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from ultralytics.nn.modules.block import Bottleneck, PSABlock
from ultralytics.utils import LOGGER, TQDM

from yolo_compress import measure
from yolo_compress.measure import count_params
from yolo_compress.csp import is_chunk_c2f
from yolo_compress.pruning.adapters import clean_copy
from yolo_compress.pruning.plan import LayerPlan


@dataclass
class Block:
    """A removable block: the module, the container holding it and how its removal is done."""

    name: str
    module: nn.Module = field(repr=False)
    container: nn.Module = field(repr=False)  # ModuleList of a C2f (csp) or the nn.Sequential holding it
    owner: nn.Module | None = field(repr=False)  # the C2f whose cv2 reads the block's output (csp only)
    kind: str  # csp or sequential
    residual: bool

    @property
    def type(self) -> str:
        return type(self.module).__name__


def is_residual(m: nn.Module) -> bool:
    """True when the block computes ``x + branch(x)`` (composed residual blocks included)."""
    if isinstance(m, (Bottleneck, PSABlock)):
        return bool(m.add)
    if isinstance(m, nn.Sequential):
        return all(is_residual(b) for b in m)  # an emptied Sequential is the identity
    return False


def find_blocks(model: nn.Module) -> list[Block]:
    """Every removable block of ``model`` in module order (nested blocks included, e.g. Bottlenecks inside a C3k)."""
    names = {m: n for n, m in model.named_modules()}
    blocks = []
    for m in model.modules():
        inner = getattr(m, "m", None)
        if is_chunk_c2f(m):
            blocks += [Block(names[b], b, m.m, m, "csp", is_residual(b)) for b in m.m]
            sequentials = [b for b in m.m if isinstance(b, nn.Sequential)]
        else:
            sequentials = [inner] if isinstance(inner, nn.Sequential) else []
        for seq in sequentials:
            blocks += [Block(names[b], b, seq, None, "sequential", True) for b in seq if is_residual(b)]
    order = {n: i for i, n in enumerate(names.values())}
    blocks.sort(key=lambda b: order[b.name])
    return [b for b in blocks if b.kind == "sequential" or b.residual or _same_width(b)]


def _same_width(block: Block) -> bool:
    """A non-residual csp block can go when the next block (if any) can read its input instead of its output."""
    items = list(block.container)
    if items[-1] is block.module:
        return True
    return _out_width(block.module, block.owner.c) == block.owner.c


def _out_width(m: nn.Module, c: int) -> int:
    """Output channels of a C2f inner block reading ``c`` channels (residual: c; Bottleneck cv2, C3k cv3)."""
    if is_residual(m):
        return c
    last = getattr(m, "cv3", None) or getattr(m, "cv2", None)
    if last is not None and hasattr(last, "conv"):
        return last.conv.out_channels
    return [c for c in m.modules() if isinstance(c, nn.Conv2d)][-1].out_channels


def _cv2_offsets(c2f: nn.Module) -> list[int]:
    """Channel offsets in ``cv2``'s input of each concatenated tensor: cv1 halves, then every block output."""
    widths = [c2f.c, c2f.c] + [_out_width(b, c2f.c) for b in c2f.m]
    offsets = [0]
    for w in widths:
        offsets.append(offsets[-1] + w)
    return offsets


def remove_block(block: Block) -> None:
    """Remove ``block`` in place (see the module docstring for the two kinds)."""
    items = list(block.container)
    i = next(j for j, b in enumerate(items) if b is block.module)
    if block.kind == "sequential":
        del block.container[i]
        return
    c2f = block.owner
    off = _cv2_offsets(c2f)
    conv = c2f.cv2.conv
    w = conv.weight.data
    src = slice(off[2 + i], off[3 + i])
    if block.residual:  # identity: the block's output equals its input, already concatenated at position 1 + i
        w[:, off[1 + i]:off[2 + i]] += w[:, src]
    keep = torch.cat([torch.arange(0, src.start), torch.arange(src.stop, w.shape[1])]).to(w.device)
    conv.weight = nn.Parameter(w.index_select(1, keep).clone())
    conv.in_channels = conv.weight.shape[1]
    del block.container[i]


def refresh_layer_params(model: nn.Module) -> None:
    """Keep each layer's ``np`` (read by model.info()) equal to its parameter count."""
    for layer in getattr(model, "model", []):
        if hasattr(layer, "np"):
            layer.np = sum(p.numel() for p in layer.parameters())


class LayerPruner:
    """Remove the whole blocks whose removal distorts the model's output least, until a target is met.

    Args:
        model: DetectionModel (or ``YOLO`` wrapper) pruned in place.
        imgsz: image size of the FLOPs counts.
    """

    def __init__(self, model: nn.Module, imgsz: int = 640) -> None:
        from yolo_compress.pruning.channel import _unwrap

        self.model = _unwrap(model)
        self.imgsz = imgsz
        self.scores: list[dict] | None = None

    def blocks(self) -> list[Block]:
        return find_blocks(self.model)

    def sensitivity(self, images: torch.Tensor) -> list[dict]:
        """Per block: relative output distortion on ``images`` and GFLOPs/params saved when removed alone."""
        from yolo_compress.pruning.sensitivity import distortion, reference

        model = self.model
        ref = reference(model, images)
        base_flops, base_params = measure.gflops(model, self.imgsz), count_params(model)
        rows = []
        for block in TQDM(self.blocks(), desc="block sensitivity"):
            trial = clean_copy(model)
            remove_block(_same_block(trial, block))
            rows.append({"block": block.name, "type": block.type, "kind": block.kind, "residual": block.residual,
                         "distortion": distortion(trial, images, ref),
                         "gflops_saved": base_flops - measure.gflops(trial, self.imgsz),
                         "params_saved": base_params - count_params(trial)})
        self.scores = rows
        return rows

    def prune(self, n_blocks: int = 0, target_flops: float | None = None, images: torch.Tensor | None = None,
              names: list[str] | None = None) -> LayerPlan:
        """Remove ``names``, or the ``n_blocks`` least sensitive blocks, or the least sensitive blocks until GFLOPs
        fall to ``target_flops`` (fraction kept) of the original; sensitivity needs calibration ``images``."""
        model = self.model
        params_before, flops_before = count_params(model), measure.gflops(model, self.imgsz)
        if names is None:
            if n_blocks <= 0 and target_flops is None:
                raise ValueError("layer pruning needs a target: prune_blocks=N (N >= 1) or target_flops=F (0 < F < 1)")
            if self.scores is None:
                if images is None:
                    raise ValueError("layer pruning by sensitivity needs calibration images")
                self.sensitivity(images)
            names = [r["block"] for r in sorted(self.scores, key=lambda r: r["distortion"])]
        by_name = {r["block"]: r for r in self.scores or []}
        blocks = {b.name: b for b in self.blocks()}  # resolved before any removal shifts ModuleList indices
        unknown = [n for n in names if n not in blocks]
        if unknown:
            raise ValueError(f"blocks {', '.join(unknown)} are not removable blocks of this model; accepted: "
                             f"{', '.join(blocks)}")
        removed = []
        for name in names:
            if n_blocks and len(removed) == n_blocks:
                break
            if target_flops is not None and measure.gflops(model, self.imgsz) <= target_flops * flops_before:
                break
            if any(name.startswith(r["block"] + ".") for r in removed):  # inside a block removed earlier
                continue
            block = blocks[name]
            remove_block(block)
            info = by_name.get(name, {})
            removed.append({"block": name, "type": block.type, "kind": block.kind, "residual": block.residual,
                            "distortion": info.get("distortion", float("nan")),
                            "gflops_saved": info.get("gflops_saved", float("nan"))})
        refresh_layer_params(model)
        flops_after = measure.gflops(model, self.imgsz)
        if target_flops is not None and flops_after > target_flops * flops_before * 1.05:
            LOGGER.warning(f"layer pruning kept {flops_after / flops_before:.1%} of GFLOPs, above target_flops="
                           f"{target_flops}: no removable block left (combine with channel pruning via 'suggest')")
        return LayerPlan(removed, params_before, count_params(model), flops_before, flops_after)


def _same_block(model: nn.Module, block: Block) -> Block:
    """The block of the same name in ``model`` (e.g. a deep copy)."""
    return next(b for b in find_blocks(model) if b.name == block.name)


def rename_map(before: dict[nn.Module, str], model: nn.Module) -> dict[str, str]:
    """Old module name -> new name for every module that survived a removal (ModuleList indices shift)."""
    return {before[m]: n for n, m in model.named_modules() if m in before}
