"""Which nodes to keep in float: INT8 variants of one checkpoint, each timed beside FP32 and validated.

Usage (after benchmarks/train_quantize_models.py):
  YOLO_OFFLINE=1 PYTHONPATH=. python benchmarks/quantization_node_sets.py --pt runs/bench_quantize/yolo26n_320/weights/best.pt --imgsz 320
Variants (all U8S8 QDQ, per-channel, minmax on the same calibration images as benchmarks/quantization.py):
  tail       only the decode tail float (the previous yolo-compress layout)
  attention  + Softmax and activation x activation MatMul float (the current yolo-compress layout)
  head       + every node of the Detect head float (decode tail included)
  attention_head        the attention and head sets together
  attention_percentile  the attention set with percentile calibration
  attention_head_silu   the attention and head sets, and every SiLU (x * sigmoid(x)) float: ORT otherwise runs it as
                        QLinearSigmoid + QLinearMul (benchmarks/ort_profile.py shows what that costs)
--out DIR keeps the variants' ONNX files there (for benchmarks/ort_profile.py); latency: each file alone in its own
process (yolo_compress.latency).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")

import onnx
from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

from yolo_compress import latency
from yolo_compress.measure import evaluate
from yolo_compress.quantize.calibration import CALIB_STRIDE, calibration_reader
from yolo_compress.quantize.graph import attention_nodes, decode_tail, head_prefix
from yolo_compress.measure import export_onnx
from yolo_compress.quantize.onnx_quant import CALIBRATION, compact_qdq_names, preprocess, save_with_metadata

VARIANTS = ("tail", "attention", "head", "attention_head", "attention_percentile", "attention_head_silu")


def silu_nodes(graph: onnx.GraphProto) -> set[str]:
    """The Sigmoid and Mul nodes of every SiLU, x * sigmoid(x)."""
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    return {name for n in graph.node if n.op_type == "Sigmoid" for m in consumers.get(n.output[0], [])
            if m.op_type == "Mul" and n.input[0] in m.input for name in (n.name, m.name)}


def float_sets(graph: onnx.GraphProto) -> dict[str, tuple[set[str], str]]:
    """Variant name -> (nodes kept float, calibration method)."""
    tail, attn = decode_tail(graph), attention_nodes(graph)
    head = {n.name for n in graph.node if n.name.startswith(head_prefix(graph))}
    return {"tail": (tail, "minmax"), "attention": (tail | attn, "minmax"), "head": (tail | head, "minmax"),
            "attention_head": (tail | attn | head, "minmax"), "attention_percentile": (tail | attn, "percentile"),
            "attention_head_silu": (tail | attn | head | silu_nodes(graph), "minmax")}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pt", required=True)
    parser.add_argument("--data", default="runs/bench_quantize/data/data.yaml")
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--fraction", type=float, default=0.5)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--out", default=None, help="keep the variants' ONNX files in this folder")
    opt = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="yc_nodesets_") as tmp:
        tmp = Path(tmp) if opt.out is None else Path(opt.out)
        tmp.mkdir(parents=True, exist_ok=True)
        fp32 = export_onnx(Path(opt.pt), opt.imgsz, tmp / "fp32.onnx")
        pre = preprocess(fp32, tmp / "pre.onnx")
        reader = calibration_reader(opt.data, opt.imgsz, opt.fraction)
        sets = float_sets(onnx.load(str(pre), load_external_data=False).graph)
        paths = {}
        for name in opt.variants:
            nodes, method = sets[name]
            reader.rewind()
            out = tmp / f"{name}.onnx"
            quantize_static(
                str(pre), str(out), reader, quant_format=QuantFormat.QDQ, per_channel=True,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, nodes_to_exclude=sorted(nodes),
                calibrate_method=CALIBRATION[method], calibration_cache_path=str(tmp / f"calib_{method}.json"),
                extra_options={"CalibStridedMinMax": CALIB_STRIDE},
            )
            paths[name] = save_with_metadata(compact_qdq_names(onnx.load(str(out))), fp32, out)
        times = latency.alone([str(fp32), *map(str, paths.values())], imgsz=opt.imgsz, runs=opt.runs)
        rows = {"fp32": (times[0], evaluate(fp32, opt.data, imgsz=opt.imgsz, batch=1)["map50_95"])}
        for (name, path), ms in zip(paths.items(), times[1:]):
            rows[name] = (ms, evaluate(path, opt.data, imgsz=opt.imgsz, batch=1)["map50_95"])
    print(f"{opt.pt} @ {opt.imgsz}\n| float set | ORT ms (median) | speed-up | mAP50-95 | Δ (pt) |\n|---|---|---|---|---|")
    base_ms, base_map = rows["fp32"]
    for name, (ms, m) in rows.items():
        print(f"| {name} | {ms:.2f} | {base_ms / ms:.2f}x | {m:.3f} | {100 * (m - base_map):+.1f} |")


if __name__ == "__main__":
    main()
