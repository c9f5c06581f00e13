"""How the float head of the `all_u8s8_head` INT8 layout should store its convolution weights: size and speed.

Usage (after benchmarks/train_quantize_models.py):
  YOLO_OFFLINE=1 PYTHONPATH=. python benchmarks/weight_storage.py --pt runs/bench_quantize/yolo26n_320/weights/best.pt --imgsz 320
Variants, all one calibration of the same layout, timed interleaved with FP32:
  fp32_weights  the head's weights left FP32 (yolo-compress before weight_storage existed)
  dequantize    int8 weights through DequantizeLinear (the QDQ way; built here only for this comparison)
  cast_mul      int8 weights rebuilt as Cast * scale (yolo_compress.quantize.weight_storage, the current way)
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")

import numpy as np
import onnx
from onnx import helper, numpy_helper

from yolo_compress.measure import export_onnx, file_size_mb, latency
from yolo_compress.quantize import onnx_quant, weight_storage
from yolo_compress.quantize.calibration import calibration_reader


def dequantize_variant(model: onnx.ModelProto, nodes: set[str]) -> int:
    """weight_storage's conversion with DequantizeLinear (per-axis, zero point 0) in place of Cast * scale."""
    converted = weight_storage.store_conv_weights_int8(model, nodes)
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Cast" and node.input[0].endswith("_int8"):
            base = node.input[0][: -len("_int8")]
            scale = inits[f"{base}_scale"]
            flat = numpy_helper.to_array(scale).reshape(-1)
            scale.CopyFrom(numpy_helper.from_array(flat, scale.name))
            graph.initializer.append(numpy_helper.from_array(np.zeros_like(flat, dtype=np.int8), f"{base}_zero_point"))
            node.CopyFrom(helper.make_node("DequantizeLinear", [node.input[0], scale.name, f"{base}_zero_point"],
                                           [base], name=f"{base}_DequantizeLinear", axis=0))
    muls = [n for n in graph.node if n.op_type == "Mul" and n.input[0].endswith("_float")]
    for n in muls:
        graph.node.remove(n)
    return converted


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pt", type=Path, required=True)
    ap.add_argument("--data", default="runs/bench_quantize/data/data.yaml")
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--fraction", type=float, default=0.1)
    ap.add_argument("--runs", type=int, default=100)
    a = ap.parse_args()
    head = next(c for c in onnx_quant.CANDIDATES if c.name == "all_u8s8_head")
    store = weight_storage.store_conv_weights_int8
    variants = {"fp32_weights": lambda model, nodes: 0, "dequantize": dequantize_variant, "cast_mul": store}
    with tempfile.TemporaryDirectory(prefix="yc_ws_") as tmp:
        tmp = Path(tmp)
        fp32 = export_onnx(a.pt, a.imgsz, tmp / "fp32.onnx")
        pre = onnx_quant.preprocess(fp32, tmp / "pre.onnx")
        reader = calibration_reader(a.data, a.imgsz, a.fraction)
        paths = {"fp32": fp32}
        try:
            for name, fn in variants.items():
                onnx_quant.store_conv_weights_int8 = fn  # the hook quantize_candidate calls for a float head
                out = onnx_quant.quantize_candidate(pre, tmp / f"{name}.onnx", head, reader, "minmax", True,
                                                    tmp / "calib.json")
                onnx.save(onnx_quant.compact_qdq_names(onnx.load(str(out))), str(out))
                paths[name] = out
        finally:
            onnx_quant.store_conv_weights_int8 = store
        for loop in (1, 2):
            times = latency(list(paths.values()), imgsz=a.imgsz, runs=a.runs, warmup=10)
            print(f"loop {loop}: " + ", ".join(f"{k} {file_size_mb(p):.2f} MB {t:.2f} ms ({times[0] / t:.2f}x)"
                                            for (k, p), t in zip(paths.items(), times)))


if __name__ == "__main__":
    main()
