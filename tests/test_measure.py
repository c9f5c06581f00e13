from types import SimpleNamespace

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
    a, b = measure.latency([str(trained_onnx), measure.load_model(trained_pt)], imgsz=64, runs=3, warmup=1)
    assert a > 0 and b > 0  # an ONNX file and a torch model timed in one loop


def test_latency_alternates_the_order_and_takes_each_median(monkeypatch):
    """Interleaving is what makes two latencies comparable on a busy machine: each round runs every target, in
    alternating order, and each target's figure is the median of its own runs (a fake clock makes it exact)."""
    clock, calls = [0.0], []

    class FakeRunner:
        def __init__(self, ms, imgsz, batch):
            self.ms = ms

        def run(self):
            calls.append(self.ms)
            clock[0] += self.ms / 1000 * (10 if len(calls) == 7 else 1)  # one outlier run: the median ignores it

    monkeypatch.setattr(measure, "_Runner", FakeRunner)
    monkeypatch.setattr(measure, "time", SimpleNamespace(perf_counter=lambda: clock[0]))
    assert measure.latency([2.0, 5.0], runs=4, warmup=1) == pytest.approx([2.0, 5.0])
    assert calls == [2.0, 5.0, 2.0, 5.0, 5.0, 2.0, 2.0, 5.0, 5.0, 2.0]


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
