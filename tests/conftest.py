"""Shared fixtures: a tiny synthetic dataset and a model trained on it for one epoch, built once per session."""

from __future__ import annotations

import os

os.environ.setdefault("YOLO_OFFLINE", "1")
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):  # `make test` runs a worker per core: one torch thread each, or they
    # oversubscribe the CPU (yolo_compress.device reads this; every test's trainer then uses a fair share)
    os.environ.setdefault("YOLO_COMPRESS_THREADS",
                          str(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))))

from pathlib import Path

import pytest

from yolo_compress.data.synthetic import make_dataset

SLOW_FIXTURES = {"trained_pt", "trained_onnx"}  # a test that needs a trained model belongs to the slow lane


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`make test-fast` (-m "not slow") is the inner loop: it leaves out every test that needs a trained model."""
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)

@pytest.fixture
def cli(monkeypatch, capsys):
    """`yolo-compress ARGS` through the console entry point, in this process: (exit code, stdout, stderr).

    Saves a Python start-up and torch import per call; tests/test_cli.py keeps one real subprocess.
    """
    import sys

    from yolo_compress.cli import entrypoint

    def run(*args) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["yolo-compress", *map(str, args)])
        try:
            entrypoint()
            code = 0
        except SystemExit as e:
            code = e.code
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


TRAIN_KW = dict(epochs=1, imgsz=64, batch=8, workers=0, plots=False, val=True, seed=0, exist_ok=True)


@pytest.fixture(scope="session")
def synth_data(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("synth"), n_train=16, n_val=8, imgsz=64, seed=0)


@pytest.fixture(scope="session")
def trained_pt(synth_data, tmp_path_factory) -> Path:
    """best.pt of a yolo26n trained for one epoch through CompressionTrainer."""
    from yolo_compress import YOLO

    project = tmp_path_factory.mktemp("runs")
    YOLO("yolo26n.yaml").train(data=str(synth_data), project=str(project), name="base", **TRAIN_KW)
    return project / "base" / "weights" / "best.pt"


@pytest.fixture(scope="session")
def trained_onnx(trained_pt, tmp_path_factory) -> Path:
    """The same model exported to ONNX by Ultralytics' own exporter."""
    import shutil

    from ultralytics import YOLO

    copy = tmp_path_factory.mktemp("onnx") / "model.pt"
    shutil.copy(trained_pt, copy)
    return Path(YOLO(str(copy)).export(format="onnx", imgsz=64))
