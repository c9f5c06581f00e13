import os

import torch

from yolo_compress.device import select


def test_select_on_cpu_uses_every_core_that_ultralytics_leaves_idle():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert select("cpu").type == "cpu" and select(None).type == "cpu"
        assert torch.get_num_threads() == min(8, os.cpu_count() or 1)  # Ultralytics alone sets cpu_count - 1
    finally:
        torch.set_num_threads(before)
