"""Layer pruning: exact removal of zero-branch residual blocks, cv2 slicing, stock artifacts."""

import pytest
import torch
from torch import nn

from yolo_compress.pruning.checkpoint import save_checkpoint
from yolo_compress.pruning.layer import LayerPruner, find_blocks, remove_block
from yolo_compress.pruning.sensitivity import head_outputs
from .test_stock_artifact import run_stock


def zero_branch(block: nn.Module) -> None:
    """Make every residual branch of ``block`` output zero: last BN of each branch gets weight = bias = 0."""
    from ultralytics.nn.modules.block import Bottleneck, PSABlock

    for m in block.modules():
        if isinstance(m, Bottleneck):
            bns = [m.cv2.bn]
        elif isinstance(m, PSABlock):
            bns = [m.attn.proj.bn, m.ffn[-1].bn]
        else:
            continue
        for bn in bns:
            nn.init.zeros_(bn.weight)
            nn.init.zeros_(bn.bias)


def outputs(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    with torch.no_grad():
        return head_outputs(model.eval()(x))


@pytest.mark.parametrize("cfg", ("yolo26n.yaml", "yolov8n.yaml", "yolo11n.yaml"))
def test_removing_zeroed_residual_blocks_keeps_outputs(cfg, build):
    model = build(cfg, nc=3).eval()
    residual = [b for b in find_blocks(model) if b.residual]
    assert {b.kind for b in residual} >= ({"csp", "sequential"} if cfg != "yolov8n.yaml" else {"csp"})
    for b in residual:
        zero_branch(b.module)
    x = torch.rand(2, 3, 64, 64)
    ref = outputs(model, x)
    params = sum(p.numel() for p in model.parameters())
    names = [b.name for b in residual]
    plan = LayerPruner(model, imgsz=64).prune(names=names)
    assert len(plan.blocks) >= 2
    assert sum(p.numel() for p in model.parameters()) < params
    for a, b in zip(outputs(model, x), ref):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_removing_c2f_block_slices_cv2(build):
    """Block 0 of yolov8n layer 4 goes: its c input channels leave cv2, block 1's weights stay where they were."""
    model = build("yolov8n.yaml", nc=3)
    c2f = model.model[4]
    c, w = c2f.c, c2f.cv2.conv.weight.detach().clone()
    second = c2f.m[1]
    block = next(b for b in find_blocks(model) if b.name == "model.4.m.0")
    remove_block(block)
    assert len(c2f.m) == 1 and c2f.m[0] is second
    assert c2f.cv2.conv.in_channels == c2f.cv2.conv.weight.shape[1] == 3 * c
    new = c2f.cv2.conv.weight
    torch.testing.assert_close(new[:, :c], w[:, :c])  # first cv1 half untouched
    torch.testing.assert_close(new[:, c:2 * c], w[:, c:2 * c] + w[:, 2 * c:3 * c])  # identity folded onto its input
    torch.testing.assert_close(new[:, 2 * c:], w[:, 3 * c:])  # block 1's channels shift down
    y = c2f(torch.rand(1, c2f.cv1.conv.in_channels, 16, 16))
    assert y.shape[1] == c2f.cv2.conv.out_channels
    torch.testing.assert_close(c2f.forward_split(torch.ones(1, c2f.cv1.conv.in_channels, 8, 8)),
                               c2f(torch.ones(1, c2f.cv1.conv.in_channels, 8, 8)))


def test_non_residual_c2f_block_drops_its_channels(build):
    model = build("yolov8n.yaml", nc=3)
    c2f = model.model[12]
    c, w = c2f.c, c2f.cv2.conv.weight.detach().clone()
    block = next(b for b in find_blocks(model) if b.name == "model.12.m.0")
    assert not block.residual
    remove_block(block)
    torch.testing.assert_close(c2f.cv2.conv.weight, w[:, :2 * c])


@pytest.mark.slow
def test_sensitivity_ranks_and_targets(build):
    model = build("yolo26n.yaml", nc=3)
    images = torch.rand(2, 3, 64, 64)
    pruner = LayerPruner(model, imgsz=64)
    rows = pruner.sensitivity(images)
    assert len(rows) == len(find_blocks(model))
    assert all(r["distortion"] >= 0 and r["gflops_saved"] > 0 for r in rows)
    plan = pruner.prune(n_blocks=2)
    assert len(plan.blocks) == 2 and plan.gflops_after < plan.gflops_before
    lowest = min(rows, key=lambda r: r["distortion"])["block"]
    assert plan.blocks[0]["block"] == lowest


@pytest.mark.slow
def test_layer_pruned_checkpoint_is_stock(tmp_path, build):
    model = build("yolo26n.yaml", nc=3)
    LayerPruner(model, imgsz=64).prune(names=["model.2.m.0", "model.6.m.0.m.1", "model.10.m.0", "model.22.m.0"])
    path = save_checkpoint(model, tmp_path / "pruned.pt")
    [line] = run_stock([path], tmp_path)
    assert int(line.split("PARAMS ")[1].split()[0]) == sum(p.numel() for p in model.parameters())
    assert (tmp_path / "pruned.onnx").stat().st_size > 0
