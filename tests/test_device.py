import os

import pytest
import torch

from yolo_compress.device import select


@pytest.fixture
def threads():
    """Restore torch's thread count after a test changes it."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_select_on_cpu_uses_every_core_that_ultralytics_leaves_idle(threads, monkeypatch):
    monkeypatch.delenv("YOLO_COMPRESS_THREADS", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # what importing ultralytics sets: not a user's choice
    torch.set_num_threads(1)
    assert select("cpu").type == "cpu" and select(None).type == "cpu"
    assert torch.get_num_threads() == min(8, os.cpu_count() or 1)  # Ultralytics alone sets cpu_count - 1


@pytest.mark.parametrize("value, expected", [("1", 1), ("3", 3), ("", None), ("0", None), ("two", None)])
def test_select_honours_a_valid_thread_setting(threads, monkeypatch, value, expected):
    monkeypatch.setenv("YOLO_COMPRESS_THREADS", value)
    select("cpu")
    assert torch.get_num_threads() == (expected or min(8, os.cpu_count() or 1))
