"""Latency as a deployed application sees it: each artifact alone in its own process, with its runtime's default
options, the artifacts alternating over several rounds; the figure is the median of the rounds' medians.

Why not one interleaved loop in one process: ONNX Runtime's idle threads spin after each run and slow whatever runs
next, so the same pair of files measured 1.59x apart interleaved with spinning on, 1.17x with it off and 1.24x each
alone in its process (issue #20). A process of its own is what a deployed model gets.

Targets: an ``.onnx`` file (ONNX Runtime, CPU), an OpenVINO IR (a ``.xml`` file or a ``*_openvino_model`` folder), or
``openvino:<file.onnx>`` (OpenVINO compiling the ONNX file at its default precision for this CPU). This module imports
neither torch nor Ultralytics, so a timing process starts in well under a second.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

OPENVINO = "openvino:"


def is_openvino(target: str | Path) -> bool:
    """Whether OpenVINO runs this target (an IR, an IR folder, or an ONNX file given as openvino:<path>)."""
    t = str(target)
    return t.startswith(OPENVINO) or t.endswith(".xml") or (Path(t).is_dir() and any(Path(t).glob("*.xml")))


def _openvino_runner(target: str, imgsz: int):
    import openvino as ov

    path = target.removeprefix(OPENVINO)
    if Path(path).is_dir():
        path = str(next(Path(path).glob("*.xml")))
    compiled = ov.Core().compile_model(path, "CPU")
    request = compiled.create_infer_request()
    x = np.random.default_rng(0).random((1, 3, imgsz, imgsz), dtype=np.float32)
    return lambda: request.infer({0: x})


def _onnx_runner(target: str, imgsz: int):
    import onnxruntime as ort

    session = ort.InferenceSession(target, providers=["CPUExecutionProvider"])  # default options, as deployed
    inp = session.get_inputs()[0]
    dtype = np.float16 if "float16" in inp.type else np.float32
    feed = {inp.name: np.random.default_rng(0).random((1, 3, imgsz, imgsz), dtype=np.float32).astype(dtype)}
    return lambda: session.run(None, feed)


def time_here(target: str | Path, imgsz: int, runs: int = 50, warmup: int = 10) -> float:
    """Median latency (ms, batch 1) of one target in this process."""
    run = _openvino_runner(str(target), imgsz) if is_openvino(target) else _onnx_runner(str(target), imgsz)
    for _ in range(warmup):
        run()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def alone(targets: list[str | Path], imgsz: int, runs: int = 50, rounds: int = 3, warmup: int = 10) -> list[float]:
    """Median over `rounds` of each target's latency (ms), each timed alone in a new process; the targets alternate
    (A B C, then C B A, ...) so that a change in machine load touches all of them alike."""
    times: list[list[float]] = [[] for _ in targets]
    for r in range(rounds):
        order = range(len(targets)) if r % 2 == 0 else reversed(range(len(targets)))
        for i in order:
            cmd = [sys.executable, "-m", __name__, str(targets[i]), str(imgsz), str(runs), str(warmup)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            times[i].append(float(out.strip().splitlines()[-1]))
    return [statistics.median(t) for t in times]


if __name__ == "__main__":
    target, size, n, w = sys.argv[1:5]
    print(time_here(target, int(size), int(n), int(w)))
