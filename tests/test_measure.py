import pytest
import torch
from torch import nn

from yolo_compress import measure


def test_params_of_a_known_module():
    assert measure.count_params(nn.Conv2d(3, 8, 3)) == 8 * 3 * 3 * 3 + 8


def test_gflops_of_a_known_conv():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False))
    macs = 8 * 3 * 9 * 64 * 64
    assert measure.gflops(model, 64) == pytest.approx(2 * macs / 1e9, rel=0.02)


def test_summary_and_latency_of_pt_and_onnx(trained_pt, trained_onnx):
    pt, ox = measure.summarize(trained_pt, 64), measure.summarize(trained_onnx, 64)
    assert pt["params"] > 2_000_000 and pt["gflops"] > 0 and pt["size_mb"] > 1
    assert ox["gflops"] is None and ox["params"] > 2_000_000
    a, b = measure.latency([str(trained_onnx), str(trained_onnx)], imgsz=64, runs=60)
    assert 0.8 < b / a < 1.25  # the same file against itself: only noise separates them
    (t,) = measure.latency([measure.load_model(trained_pt)], imgsz=64, runs=3, warmup=1)
    assert t > 0


def test_evaluate_pt_and_onnx(trained_pt, trained_onnx, synth_data):
    for model in (trained_pt, trained_onnx):
        m = measure.evaluate(model, str(synth_data), imgsz=64)
        assert set(m) == {"map50", "map50_95"} and 0 <= m["map50_95"] <= m["map50"] <= 1


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="'model=.*nope.pt' does not exist"):
        measure.load_model(tmp_path / "nope.pt")


def test_latency_uses_the_models_device_and_dtype():
    model = nn.Sequential(nn.Conv2d(3, 4, 3)).to(torch.float64)
    (t,) = measure.latency([model], imgsz=32, runs=2, warmup=1)
    assert t > 0
