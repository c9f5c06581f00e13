"""Devices as Ultralytics selects them, but with every CPU core for yolo-compress' own compute."""

from __future__ import annotations

import os

import torch
from ultralytics.utils.torch_utils import select_device

MAX_THREADS = 8  # Ultralytics' own cap on CPU threads
THREADS_ENV = "YOLO_COMPRESS_THREADS"


def cpu_threads() -> int:
    """Threads for torch on CPU: YOLO_COMPRESS_THREADS when set (e.g. one per process for runs side by side, where
    processes each spinning on every core slow all of them down), else every core up to Ultralytics' cap.

    Not OMP_NUM_THREADS: importing ultralytics sets it to 1 whenever it is unset, so it cannot tell a user's choice.
    """
    wanted = os.environ.get(THREADS_ENV, "")
    if wanted.isdigit() and int(wanted) > 0:
        return int(wanted)
    return min(MAX_THREADS, os.cpu_count() or 1)


def use_all_cores(device: torch.device) -> None:
    """On CPU, use every core (up to 8) for torch, or YOLO_COMPRESS_THREADS (cpu_threads).

    Ultralytics' select_device sets cpu_count-1 threads, keeping a core for data loading; on 2 cores that idles half
    the machine. Measured on 2 cores at imgsz 160 (benchmarks/cpu_threads.py): training epochs 1.46-1.64x faster,
    the prune command's BatchNorm re-estimation 1.28x; suggest's sensitivity analysis (many small forward passes)
    barely moves (1.0-1.1x). Call it after every select_device, which resets the count.
    """
    if device.type == "cpu":
        torch.set_num_threads(cpu_threads())


def select(device: str | None) -> torch.device:
    """Ultralytics' select_device (CPU when None), then use_all_cores."""
    chosen = select_device(device or "cpu", verbose=False)
    use_all_cores(chosen)
    return chosen
