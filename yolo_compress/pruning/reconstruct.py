"""Refit the convolutions that lost input channels, so the pruned model computes what the original computed.

After channels are removed, every convolution that read them sees fewer inputs and its outputs drift; BatchNorm
re-estimation only rescales that drift. Here each such convolution's weights are refitted by ridge least squares, on
the user's images, to reproduce the original model's output of the same channels from the pruned model's actual
inputs (the "feature reconstruction" of He et al., 2017, and ThiNet), layer by layer in forward order so later layers
also absorb the error of earlier ones. Neither torch-pruning nor Ultralytics has this step, hence the module.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

RECONSTRUCTION_BATCHES = 4  # train batches the refit sees (vehicles YOLO26n l2 0.5: 0.123 mAP50-95 before fine-tuning)
POSITIONS_PER_IMAGE = 64  # output positions sampled per image and layer: enough rows for the widest 3x3 input
RIDGE = 1e-2  # pull towards the pruned weights, relative to the mean input energy of the layer


class _Stop(Exception):
    """Raised by a hook to end a forward pass once the layer of interest has run."""


def kept_outputs(plan_groups: list[dict], conv_names: list[str], widths: dict[str, int]) -> dict[str, torch.Tensor]:
    """Original output-channel indices each pruned conv keeps, from the plan's removed indices per BatchNorm."""
    removed: dict[str, set[int]] = {}
    for g in plan_groups:
        for bn, idxs in g.get("removed", {}).items():
            removed.setdefault(bn.removesuffix(".bn") + ".conv", set()).update(idxs)
    return {n: torch.tensor([i for i in range(widths[n]) if i not in removed.get(n, set())]) for n in conv_names}


def _call_order(model: nn.Module, x: torch.Tensor) -> list[str]:
    """Conv2d module names in the order one forward pass calls them."""
    names = {m: n for n, m in model.named_modules()}
    order: list[str] = []
    hooks = [m.register_forward_hook(lambda mod, i, o: order.append(names[mod]))
             for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        model(x)
    finally:
        for h in hooks:
            h.remove()
    return list(dict.fromkeys(order))


def _columns(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """The conv's input as rows of (N * output positions, in_channels * kh * kw [+ 1 for the bias])."""
    cols = F.unfold(x, conv.kernel_size, conv.dilation, conv.padding, conv.stride).transpose(1, 2).flatten(0, 1)
    return torch.cat([cols, torch.ones_like(cols[:, :1])], 1) if conv.bias is not None else cols


def _capture(model: nn.Module, conv: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Input of ``conv`` for image batch ``x``, stopping the forward pass as soon as it is reached."""
    seen: list[torch.Tensor] = []

    def hook(mod, inputs):
        seen.append(inputs[0])
        raise _Stop

    handle = conv.register_forward_pre_hook(hook)
    try:
        model(x)
    except _Stop:
        pass
    finally:
        handle.remove()
    return seen[0]


def refittable(conv: nn.Conv2d, original: nn.Conv2d) -> bool:
    """A plain (ungrouped, integer-padded) convolution that lost input channels."""
    return conv.groups == 1 and isinstance(conv.padding, tuple) and conv.in_channels < original.in_channels


@torch.no_grad()
def reconstruct(pruned: nn.Module, original: nn.Module, plan_groups: list[dict], batches: list[dict],
                seed: int = 0) -> int:
    """Refit, in place, every plain conv of ``pruned`` that lost input channels; return how many were refitted.

    ``original`` is the unpruned model with the same module names; ``plan_groups`` the plan's group rows (their
    ``removed`` indices say which output channels each layer kept); ``batches`` Ultralytics batches of the user's
    train images. Both models are evaluated in eval mode and put back in their modes.
    """
    modes = pruned.training, original.training
    pruned.eval(), original.eval()
    device = next(pruned.parameters()).device
    images = [b["img"].to(device).float() / 255 for b in batches]
    convs = dict(pruned.named_modules())
    sources = dict(original.named_modules())
    order = [n for n in _call_order(pruned, images[0][:1]) if refittable(convs[n], sources[n])]
    kept = kept_outputs(plan_groups, order, {n: sources[n].out_channels for n in order})
    targets = _original_outputs(original, [sources[n] for n in order], [kept[n].to(device) for n in order], images)
    generator = torch.Generator().manual_seed(seed)
    for name, wanted in zip(order, targets):
        _refit(convs[name], pruned, wanted, images, generator)
    match_batchnorm(pruned, images)
    pruned.train(modes[0]), original.train(modes[1])
    return len(order)


@torch.no_grad()
def match_batchnorm(model: nn.Module, images: list[torch.Tensor]) -> None:
    """Give every BatchNorm the statistics of what it now receives, and fold the change into its affine weights so
    the eval-mode function stays the same.

    The refit reproduces the unpruned outputs only roughly (least squares shrinks their spread) while BatchNorm still
    holds the unpruned statistics; training normalises with batch statistics, so without this it would start from
    another function than the one the refit made. Plain re-estimation without the fold changes the eval-mode function
    instead, and in exploratory runs cost most of the refit's gain (docs/pruning.md).
    """
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d) and m.track_running_stats]
    sums = {m: [0.0, 0.0, 0] for m in norms}

    def hook(module, inputs):
        x = inputs[0].transpose(0, 1).flatten(1).double()
        acc = sums[module]
        acc[0], acc[1], acc[2] = acc[0] + x.sum(1), acc[1] + (x * x).sum(1), acc[2] + x.shape[1]

    handles = [m.register_forward_pre_hook(hook) for m in norms]
    try:
        for x in images:
            model(x)
    finally:
        for h in handles:
            h.remove()
    for m in norms:
        total, squares, count = sums[m]
        if not count:
            continue
        mean = total / count
        var = (squares / count - mean * mean).clamp_min(0)
        old_std = (m.running_var.double() + m.eps).sqrt()
        scale = (var + m.eps).sqrt() / old_std
        if m.affine:
            m.bias.add_((m.weight.double() * (mean - m.running_mean.double()) / old_std).to(m.bias.dtype))
            m.weight.mul_(scale.to(m.weight.dtype))
        m.running_mean.copy_(mean)
        m.running_var.copy_(var)


def _original_outputs(original: nn.Module, sources: list[nn.Conv2d], kept: list[torch.Tensor],
                      images: list[torch.Tensor]) -> list[list[torch.Tensor]]:
    """Per source conv, per batch: the unpruned model's output of the channels the pruned conv kept. The unpruned
    model does not change during the refit, so one forward pass per batch serves every conv."""
    outputs: list[list[torch.Tensor]] = [[] for _ in sources]
    for x in images:
        first: dict[int, torch.Tensor] = {}  # a conv's first call in the pass, as _capture reads the pruned input
        handles = [m.register_forward_hook(lambda mod, i, o, at=at: first.setdefault(at, o))
                   for at, m in enumerate(sources)]
        try:
            original(x)
        finally:
            for h in handles:
                h.remove()
        for at, idx in enumerate(kept):
            outputs[at].append(first[at][:, idx])
    return outputs


def _refit(conv: nn.Conv2d, pruned: nn.Module, targets: list[torch.Tensor], images: list[torch.Tensor],
           generator: torch.Generator) -> None:
    """Ridge least squares for one conv over all batches: (X'X + lambda I) W = X'Y + lambda W0, Y the unpruned
    model's outputs ``targets`` (one tensor per batch)."""
    weight = conv.weight
    w0 = weight.flatten(1).t()
    if conv.bias is not None:
        w0 = torch.cat([w0, conv.bias[None]], 0)
    w0 = w0.double()
    gram = w0.new_zeros(w0.shape[0], w0.shape[0])
    cross = torch.zeros_like(w0)
    for x, target in zip(images, targets):
        rows = _columns(conv, _capture(pruned, conv, x))
        target = target.flatten(2).transpose(1, 2).flatten(0, 1)
        pick = torch.randperm(rows.shape[0], generator=generator)[: POSITIONS_PER_IMAGE * x.shape[0]].to(rows.device)
        rows, target = rows[pick].double(), target[pick].double()
        gram += rows.t() @ rows
        cross += rows.t() @ target
    ridge = RIDGE * gram.diagonal().mean().clamp_min(1e-12)
    eye = torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device)
    solved = torch.linalg.solve(gram + ridge * eye, cross + ridge * w0).to(weight.dtype)
    if conv.bias is not None:
        conv.bias.copy_(solved[-1])
        solved = solved[:-1]
    weight.copy_(solved.t().reshape_as(weight))
