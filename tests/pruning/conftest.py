"""Fixtures for the pruning tests: random-init detectors built offline from their yaml."""

import os

os.environ.setdefault("YOLO_OFFLINE", "1")

import pytest
import torch
from ultralytics.nn.tasks import DetectionModel


def build_model(cfg: str, nc: int = 80) -> DetectionModel:
    """Random-init detector from a stock yaml, fixed seed so scores are reproducible."""
    torch.manual_seed(0)
    return DetectionModel(cfg, nc=nc, verbose=False)


@pytest.fixture
def build():
    return build_model


@pytest.fixture
def yolo26n() -> DetectionModel:
    return build_model("yolo26n.yaml")
