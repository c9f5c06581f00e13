"""The CSP blocks' split input held as two convolutions: same outputs, no Split in the exported graph."""

import copy
import hashlib
from collections import Counter

import numpy as np
import onnx
import pytest
import torch
from ultralytics import YOLO as StockYOLO
from ultralytics.nn.modules.block import C2PSA, C2f
from ultralytics.nn.tasks import DetectionModel

from yolo_compress import measure
from yolo_compress.csp import split_conv, split_csp_inputs
from yolo_compress.pruning.channel import ChannelPruner


def _model(cfg: str) -> DetectionModel:
    torch.manual_seed(0)
    model = DetectionModel(cfg, nc=3, verbose=False).eval()
    for m in model.modules():  # BatchNorm statistics away from the identity, so a wrong slice shows
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    return model


@torch.no_grad()
def _outputs(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    y = model(x)
    return y[0] if isinstance(y, (list, tuple)) else y


@pytest.mark.parametrize("cfg, blocks", [("yolov8n.yaml", 8), ("yolo11n.yaml", 9), ("yolo26n.yaml", 9)])
def test_split_inputs_compute_the_same(cfg, blocks):
    model, x = _model(cfg), torch.rand(1, 3, 64, 64)
    split = copy.deepcopy(model)
    assert split_csp_inputs(split) == blocks
    assert not any(hasattr(m, "cv1") for m in split.modules() if isinstance(m, (C2f, C2PSA)))
    torch.testing.assert_close(_outputs(split, x), _outputs(model, x), rtol=1e-5, atol=1e-5)


def test_split_after_pruning_and_fusing():
    """Pruned widths (each half keeps its own channels) and BatchNorm folded into the convolution."""
    model, x = _model("yolo26n.yaml"), torch.rand(1, 3, 64, 64)
    ChannelPruner(model, 0.5, imgsz=64).prune()
    model = model.eval().fuse(verbose=False)
    split = copy.deepcopy(model)
    assert split_csp_inputs(split) == 9
    torch.testing.assert_close(_outputs(split, x), _outputs(model, x), rtol=1e-5, atol=1e-5)


def test_split_conv_keeps_each_half():
    conv = _model("yolo26n.yaml").model[2].cv1
    half = conv.conv.out_channels // 2
    a, b = split_conv(conv, (half, half))
    x = torch.rand(1, conv.conv.in_channels, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(torch.cat([a(x), b(x)], 1), conv(x))
    assert a.bn.num_features == b.conv.out_channels == half


def _ops(path) -> Counter:
    return Counter(n.op_type for n in onnx.load(str(path)).graph.node)


def test_export_has_no_csp_split_and_the_same_outputs(tmp_path):
    import onnxruntime as ort

    pt = tmp_path / "m.pt"
    StockYOLO("yolo26n.yaml").save(pt)
    digest = hashlib.sha256(pt.read_bytes()).hexdigest()
    split = measure.export_onnx(pt, 64, tmp_path / "split.onnx")
    stock = measure.export_onnx(pt, 64, tmp_path / "stock.onnx", split_csp=False)
    assert _ops(stock)["Split"] - _ops(split)["Split"] == 9  # one per C3k2/C2PSA; attention's q/k/v split stays
    x = {"images": np.random.default_rng(0).random((1, 3, 64, 64), dtype=np.float32)}
    a, b = (ort.InferenceSession(str(p)).run(None, x)[0] for p in (split, stock))
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    assert hashlib.sha256(pt.read_bytes()).hexdigest() == digest  # the checkpoint itself is never rewritten
    assert StockYOLO(str(split)).predict(np.zeros((64, 64, 3), np.uint8), imgsz=64, verbose=False)
