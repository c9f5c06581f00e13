"""Latency of deployment artifacts in their own runtimes, side by side (issue #20): each alone in its own process.

Targets as yolo_compress.latency takes them: an .onnx file (ONNX Runtime, CPU), an OpenVINO IR folder, or
openvino:<file.onnx> (OpenVINO compiling the ONNX at its default precision for this CPU). Prints the median ms over
`rounds` alternating rounds of `runs` timed runs each, and the speed-up against the first target.

Usage: python benchmarks/runtimes.py FP32.onnx INT8.onnx openvino:FP32.onnx INT8_openvino_model/ [imgsz=320]
       [runs=100] [rounds=5]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import cpu_line, key_value_args  # noqa: E402
from yolo_compress import latency  # noqa: E402


def main(targets: list[str], imgsz: int = 320, runs: int = 100, rounds: int = 5) -> None:
    ms = latency.alone(targets, imgsz=imgsz, runs=runs, rounds=rounds)
    print(f"CPU: {cpu_line()}; imgsz {imgsz}, batch 1; each target alone in its own process, median of {rounds} "
          f"alternating rounds of {runs} runs (`python benchmarks/runtimes.py {' '.join(targets)} imgsz={imgsz} "
          f"runs={runs} rounds={rounds}`)\n")
    print("| target | runtime | ms | speed-up |\n|---|---|---:|---:|")
    for target, t in zip(targets, ms):
        runtime = "OpenVINO" if latency.is_openvino(target) else "ONNX Runtime"
        print(f"| {Path(target.removeprefix(latency.OPENVINO)).name} | {runtime} | {t:.2f} | {ms[0] / t:.2f}x |")


if __name__ == "__main__":
    main([a for a in sys.argv[1:] if "=" not in a or a.startswith(latency.OPENVINO)],
         **key_value_args([a for a in sys.argv[1:] if "=" in a and not a.startswith(latency.OPENVINO)]))
