import json

import pytest
import torch
from torch import nn

from yolo_compress import analysis
from yolo_compress.commands.compare import run as compare_command


def _toy():
    model = nn.Sequential(nn.Conv2d(2, 4, 1, bias=False), nn.BatchNorm2d(4))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 0.0], [2e-4, -3e-4], [5.0, 6.0]]).view(4, 2, 1, 1))
        model[1].weight.copy_(torch.tensor([1.0, 0.001, -0.005, 0.5]))
    return model


def test_weight_and_channel_sparsity_are_exact():
    model = _toy()
    assert analysis.weight_sparsity(model, 1e-3)["overall_sparsity"] == 5 / 8
    assert analysis.channel_sparsity(model, 1e-3)["channel_sparsity"] == 2 / 4


def test_bn_stats_are_exact():
    s = analysis.bn_stats(_toy(), 1e-2)
    assert s["bn_count"] == 4 and s["bn_sparsity"] == 0.5
    assert abs(s["bn_mean_abs_gamma"] - (1 + 0.001 + 0.005 + 0.5) / 4) < 1e-6


def test_histogram_is_written(tmp_path):
    path = analysis.plot_bn_histogram({"a": _toy(), "b": _toy()}, tmp_path / "h.png")
    assert path.stat().st_size > 5000


def test_analyze_and_compare_pt_and_onnx(trained_pt, trained_onnx, tmp_path):
    for model in (trained_pt, trained_onnx):
        r = analysis.analyze(model, imgsz=64)
        assert r["params"] > 0 and 0 <= r["overall_sparsity"] < 1
        assert analysis.format_analysis(r).startswith("model")
    c = analysis.compare(trained_pt, trained_pt, imgsz=64, runs=40)
    assert c["ratio_b_over_a"]["params"] == 1.0
    assert c["ratio_b_over_a"]["latency_ms"] == pytest.approx(c["b"]["latency_ms"] / c["a"]["latency_ms"], rel=1e-3)
    compare_command({"models": [str(trained_onnx), str(trained_onnx)], "imgsz": 64, "runs": 5,
                              "json": str(tmp_path / "c.json")})
    assert json.loads((tmp_path / "c.json").read_text())["a"]["params"] > 0
    compare_command({"models": f"{trained_onnx},{trained_onnx}", "imgsz": 64, "runs": 2})  # models=a,b
    with pytest.raises(ValueError, match="exactly two models, got 1"):
        compare_command({"models": str(trained_onnx)})
