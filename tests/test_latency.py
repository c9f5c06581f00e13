import importlib.util
import subprocess
from types import SimpleNamespace

import pytest
import torch

from yolo_compress import latency


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    torch.onnx.export(torch.nn.Conv2d(3, 4, 3), torch.rand(1, 3, 32, 32), str(path), dynamo=False)
    return path


def test_each_target_runs_alone_in_a_new_process_alternating(monkeypatch):
    """One process per target and round, order reversed every other round, median of the rounds."""
    calls = []

    def fake_run(cmd, **kw):
        calls.append(cmd[3])
        ms = {"a.onnx": [1.0, 9.0, 2.0], "b.onnx": [5.0, 6.0, 50.0]}[cmd[3]][sum(c == cmd[3] for c in calls) - 1]
        return SimpleNamespace(stdout=f"{ms}\n")

    monkeypatch.setattr(subprocess, "run", fake_run)
    assert latency.alone(["a.onnx", "b.onnx"], imgsz=32, rounds=3) == [2.0, 6.0]
    assert calls == ["a.onnx", "b.onnx", "b.onnx", "a.onnx", "a.onnx", "b.onnx"]


def test_an_onnx_file_is_timed_in_a_child_process(tiny_onnx):
    (ms,) = latency.alone([tiny_onnx], imgsz=32, runs=3, rounds=1, warmup=1)
    assert ms > 0
    assert not latency.is_openvino(tiny_onnx) and latency.is_openvino(latency.OPENVINO + str(tiny_onnx))


@pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="the optional extra yolo-compress[openvino]")
def test_openvino_times_the_onnx_file_at_its_default_precision(tiny_onnx):
    (ms,) = latency.alone([latency.OPENVINO + str(tiny_onnx)], imgsz=32, runs=3, rounds=1, warmup=1)
    assert ms > 0
