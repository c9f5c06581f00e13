"""The CSP blocks' split input as two convolutions: one 1x1 ``Conv`` whose output is cut in halves, held as two.

C2f, C3k2 and C2PSA start with one 1x1 convolution whose output is split in two halves (``chunk``/``split``). Two
tools cannot work with that split, and both are served by the same rewrite, which computes exactly the same values:

- torch-pruning's dependency graph cannot follow ``Tensor.chunk`` (pruning.adapters holds the halves as two
  convolutions while pruning and merges them back afterwards);
- ONNX Runtime's CPU provider runs convolutions in a blocked channel layout (NCHWc) but has no blocked ``Split``:
  every such block converts its tensor back to plain NCHW before the split and to NCHWc after it.
  ``split_csp_inputs`` rewrites the in-memory copy that ``measure.export_onnx`` exports, so the ONNX file has two
  convolutions and no such ``Split`` (docs/quantization.md measures it); checkpoints keep stock modules.

Neither Ultralytics' exporter nor ONNX Runtime's optimizer does this, hence the hand-written module.
"""

from __future__ import annotations

import copy
import types
from collections.abc import Callable

import torch
from torch import nn
from ultralytics.nn.modules.block import C2PSA, C2f
from ultralytics.nn.modules.conv import Conv


def _take(layer: nn.Module, keep: slice) -> None:
    """Keep only the output channels ``keep`` of a Conv2d or BatchNorm2d, in place."""
    for name in ("weight", "bias"):
        tensor = getattr(layer, name, None)
        if tensor is not None:
            setattr(layer, name, nn.Parameter(tensor.detach()[keep].clone(), requires_grad=tensor.requires_grad))
    if isinstance(layer, nn.BatchNorm2d):
        layer.running_mean, layer.running_var = layer.running_mean[keep].clone(), layer.running_var[keep].clone()
        layer.num_features = layer.weight.shape[0]
    else:
        layer.out_channels = layer.weight.shape[0]


def split_conv(conv: Conv, sizes: tuple[int, int]) -> tuple[Conv, Conv]:
    """Split a 1x1 ``Conv`` (BatchNorm folded or not) along its output channels into two independent ``Conv``."""
    parts = []
    for keep in (slice(0, sizes[0]), slice(sizes[0], sizes[0] + sizes[1])):
        part = copy.deepcopy(conv)
        for layer in (part.conv, getattr(part, "bn", None)):
            if layer is not None:
                _take(layer, keep)
        parts.append(part)
    return parts[0], parts[1]


def merge_convs(a: Conv, b: Conv) -> Conv:
    """Concatenate two ``Conv`` modules sharing an input into one whose output is ``cat([a(x), b(x)], 1)``."""
    merged = copy.deepcopy(a)
    merged.conv.weight = nn.Parameter(torch.cat([a.conv.weight.data, b.conv.weight.data], 0))
    merged.conv.out_channels = a.conv.out_channels + b.conv.out_channels
    bn = merged.bn
    bn.weight = nn.Parameter(torch.cat([a.bn.weight.data, b.bn.weight.data]))
    bn.bias = nn.Parameter(torch.cat([a.bn.bias.data, b.bn.bias.data]))
    bn.running_mean = torch.cat([a.bn.running_mean, b.bn.running_mean])
    bn.running_var = torch.cat([a.bn.running_var, b.bn.running_var])
    bn.num_features = merged.conv.out_channels
    return merged


def is_chunk_c2f(m: nn.Module) -> bool:
    """True for C2f-family modules whose forward splits ``cv1`` with ``chunk`` (C2f, C3k2, C2fPSA, C2fCIB)."""
    return isinstance(m, C2f) and type(m).forward is C2f.forward


def _c2f_forward(self: C2f, x: torch.Tensor) -> torch.Tensor:
    """C2f.forward with the two halves computed by their own convolutions."""
    y = [self.cv1_a(x), self.cv1_b(x)]
    y.extend(m(y[-1]) for m in self.m)
    return self.cv2(torch.cat(y, 1))


def _c2psa_forward(self: C2PSA, x: torch.Tensor) -> torch.Tensor:
    """C2PSA.forward with the two halves computed by their own convolutions."""
    return self.cv2(torch.cat((self.cv1_a(x), self.m(self.cv1_b(x))), 1))


def _split_forward(m: nn.Module) -> Callable | None:
    """The split-free forward for a block whose forward is the stock one (subclasses that override it are left)."""
    if is_chunk_c2f(m):
        return _c2f_forward
    if isinstance(m, C2PSA) and type(m).forward is C2PSA.forward:
        return _c2psa_forward
    return None


def split_csp_inputs(model: nn.Module) -> int:
    """Rewrite, in place, every C2f-family and C2PSA block whose input convolution is split in two; returns how many.

    For exporting only: the rewritten blocks hold ``cv1_a``/``cv1_b`` instead of ``cv1`` and an instance-level
    forward. Ultralytics' exporter replaces a C2f's forward by its ``forward_split``, so that attribute is set too.
    """
    count = 0
    for m in model.modules():
        forward = _split_forward(m)
        if forward is None or m.cv1.conv.groups != 1 or m.cv1.conv.out_channels != 2 * m.c:
            continue
        m.cv1_a, m.cv1_b = split_conv(m.cv1, (m.c, m.c))
        del m.cv1
        m.forward = m.forward_split = types.MethodType(forward, m)
        count += 1
    return count
