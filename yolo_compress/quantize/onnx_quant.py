"""ONNX artifacts of one checkpoint: FP32 (Ultralytics' exporter), static INT8 QDQ, FP16, dynamic INT8.

All quantization is ONNX Runtime's own (onnxruntime.quantization); this module decides what to quantize and
with which settings, and writes every file atomically next to (never over) the input.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx
from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_dynamic, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process
from ultralytics.utils import LOGGER

from yolo_compress.files import atomic_path, scratch_dir
from yolo_compress.quantize.calibration import CALIB_STRIDE, LetterboxReader
from yolo_compress.quantize.cpu import has_vnni
from yolo_compress.quantize.graph import attention_nodes, decode_tail, head_nodes
from yolo_compress.quantize.weight_storage import store_conv_weights_int8

CALIBRATION = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy, "percentile": CalibrationMethod.Percentile}
WEIGHTED_OPS = {"Conv", "Gemm", "MatMul"}


@dataclass(frozen=True)
class Candidate:
    """One INT8 layout to time: which nodes get Q/DQ and the activation type."""

    name: str
    activation: QuantType
    weighted_only: bool  # only Conv/Gemm/MatMul (Ultralytics' choice) instead of every op outside the float set
    float_head: bool = False  # the whole Detect head in float, not only its decode tail

    def exclude(self, graph: onnx.GraphProto, tail: set[str]) -> list[str]:
        float_nodes = tail | attention_nodes(graph) | (head_nodes(graph) if self.float_head else set())
        if self.weighted_only:
            return sorted({n.name for n in graph.node if n.op_type not in WEIGHTED_OPS} | float_nodes)
        return sorted(float_nodes)


# Measured on an AVX-512-VNNI CPU with ONNX Runtime 1.31 (docs/quantization.md): whole-graph U8S8 fuses into
# QLinearConv/QLinearSigmoid/QLinearMul chains and is the fastest; S8S8 QDQ stays unfused there (Q/DQ around float
# Conv) and is ~2x slower than FP32. Other CPUs/ORT builds may differ, hence timing all of them on the spot.
# The float-head layout trades a few % of speed for the head's class-branch convolutions, the most drifting
# tensors after attention; whether that is worth it is decided by mAP (SPEED_TOLERANCE).
CANDIDATES = (
    Candidate("all_u8s8", QuantType.QUInt8, weighted_only=False),
    Candidate("all_u8s8_head", QuantType.QUInt8, weighted_only=False, float_head=True),
    Candidate("all_s8s8", QuantType.QInt8, weighted_only=False),
    Candidate("weighted_u8s8", QuantType.QUInt8, weighted_only=True),
)


QDQ_SUFFIXES = ("_quantized", "_QuantizeLinear", "_DequantizeLinear", "_QuantizeLinear_Output", "_DequantizeLinear_Output",
                "_scale", "_zero_point")


def compact_qdq_names(model: onnx.ModelProto) -> onnx.ModelProto:
    """Give the tensors and Q/DQ nodes that the quantizer added short names, and drop cached shape info.

    The quantizer derives ~3000 long names from the layer names (e.g. '/model.22/m.0/attn/MatMul_output_0_
    DequantizeLinear_Output'); on a nano model they are ~10% of the file. Original layer and tensor names are kept,
    so the graph still reads the same in a viewer; ONNX Runtime recomputes shapes at load time.
    """
    graph = model.graph
    keep = {v.name for v in (*graph.input, *graph.output)}
    names: dict[str, str] = {}

    def short(name: str) -> str:
        if name in keep or not name.endswith(QDQ_SUFFIXES):
            return name
        return names.setdefault(name, f"q{len(names)}")

    for t in graph.initializer:
        t.name = short(t.name)
    for n in graph.node:
        n.input[:] = [short(i) for i in n.input]
        n.output[:] = [short(o) for o in n.output]
        if n.op_type in {"QuantizeLinear", "DequantizeLinear"}:
            n.name = short(n.name)
    del graph.value_info[:]
    return model


def copy_metadata(src: onnx.ModelProto, dst: onnx.ModelProto) -> None:
    """Ultralytics' ONNX backend reads names, stride, imgsz and task from metadata_props."""
    have = {p.key for p in dst.metadata_props}
    for p in src.metadata_props:
        if p.key not in have:
            dst.metadata_props.add(key=p.key, value=p.value)


def save_with_metadata(model: onnx.ModelProto, reference: Path, dest: Path) -> Path:
    copy_metadata(onnx.load(str(reference), load_external_data=False), model)
    with atomic_path(dest) as tmp:
        onnx.save(model, str(tmp))
    return dest


def preprocess(fp32: Path, out: Path) -> Path:
    """ONNX Runtime's recommended pre-quantization pass (shape inference and graph optimisation)."""
    quant_pre_process(str(fp32), str(out), skip_symbolic_shape=True)
    return out


def quantize_candidate(
    pre: Path, out: Path, cand: Candidate, reader: LetterboxReader, calibration: str, per_channel: bool, cache: Path
) -> Path:
    """Static INT8 QDQ for one candidate; calibration ranges are computed once and shared through `cache`.

    A float head still stores its convolution weights as int8 (weight_storage), so it costs no file size.
    """
    graph = onnx.load(str(pre), load_external_data=False).graph
    tail = decode_tail(graph)
    reader.rewind()
    quantize_static(
        str(pre), str(out), reader,
        quant_format=QuantFormat.QDQ,
        per_channel=per_channel,
        reduce_range=not has_vnni(),
        activation_type=cand.activation,
        weight_type=QuantType.QInt8,
        nodes_to_exclude=cand.exclude(graph, tail),
        calibrate_method=CALIBRATION[calibration],
        calibration_cache_path=str(cache),
        extra_options={"CalibStridedMinMax": min(CALIB_STRIDE, len(reader))},
    )
    if cand.float_head:
        model = onnx.load(str(out))
        store_conv_weights_int8(model, head_nodes(graph) - tail)
        onnx.save(model, str(out))
    return out


# Layouts within this fraction of the fastest one's latency count as equally fast; among them the most accurate is
# kept. 10% is above the run-to-run spread of latency medians on a quiet machine (a few %) and below what the
# float head costs at 320 on YOLO26n (~4%, docs/quantization.md), so that trade is settled by mAP, not by noise.
SPEED_TOLERANCE = 0.10


def choose_layout(timing: dict[str, float], accuracy: Callable[[str], float] | None) -> tuple[str, dict[str, float]]:
    """The most accurate layout among those within SPEED_TOLERANCE of the fastest (the fastest without `accuracy`).

    Returns the choice and the accuracy measured per contender (layouts too slow to contend are not evaluated).
    """
    fastest = min(timing.values())
    contenders = [k for k, ms in timing.items() if ms <= fastest * (1 + SPEED_TOLERANCE)]
    if accuracy is None or len(contenders) == 1:
        return min(contenders, key=timing.get), {}
    scores = {k: accuracy(k) for k in contenders}
    return max(contenders, key=lambda k: (scores[k], -timing[k])), scores


def _select(fp32: Path, paths: dict[str, Path], imgsz: int, runs: int,
            accuracy: Callable[[Path], float] | None) -> dict[str, Any]:
    """Time the built layouts and FP32 on this CPU, each alone in its own process (latency.alone), and choose one
    (choose_layout)."""
    from yolo_compress import latency

    times = latency.alone([str(fp32), *map(str, paths.values())], imgsz=imgsz, runs=runs, warmup=5)
    timing = dict(zip(paths, times[1:]))
    best, scores = choose_layout(timing, accuracy and (lambda k: accuracy(paths[k])))
    LOGGER.info(f"INT8 layouts (median ms, each alone; FP32 {times[0]:.2f}): "
                + ", ".join(f"{k} {v:.2f}" + (f" (accuracy {scores[k]:.4f})" if k in scores else "")
                            for k, v in timing.items()) + f" -> {best}")
    if timing[best] >= times[0]:
        LOGGER.warning(f"INT8: no layout was faster than FP32 at imgsz={imgsz} in this measurement; writing '{best}'.")
    return {"layouts_ms": {"fp32": times[0], **timing}, "layouts_accuracy": scores, "chosen": best}


def quantize_int8(
    fp32: Path, dest: Path, reader: LetterboxReader, imgsz: int, calibration: str = "minmax",
    per_channel: bool = True, runs: int = 30, debug: bool = False, accuracy: Callable[[Path], float] | None = None,
    layout: str = "auto",
) -> tuple[Path, dict[str, Any]]:
    """Build every candidate layout, time them with FP32 on this CPU (each alone in its own process) and keep the
    fastest, or with `accuracy` (a score of an INT8 file, higher is better) the most accurate of the nearly fastest
    (choose_layout).
    A `layout` other than "auto" builds only that candidate, untimed: the choice for a target CPU that is not this one.

    Returns the written INT8 path and a record of the measured median latency (ms) per candidate and of FP32, the
    accuracy of the contenders, the chosen layout and, with debug, the most drifting tensors (measured before names
    are compacted).
    """
    with scratch_dir(dest.parent) as tmp:
        pre = preprocess(fp32, tmp / "pre.onnx")
        paths = {}
        for cand in CANDIDATES if layout == "auto" else [c for c in CANDIDATES if c.name == layout]:
            LOGGER.info(f"INT8: quantizing layout '{cand.name}' ({calibration} calibration, {len(reader)} images)")
            quantize_candidate(pre, tmp / "q.onnx", cand, reader, calibration, per_channel, tmp / "calib.json")
            paths[cand.name] = save_with_metadata(onnx.load(str(tmp / "q.onnx")), fp32, tmp / f"{cand.name}.onnx")
        if layout == "auto":
            record = _select(fp32, paths, imgsz, runs, accuracy)
        else:
            record = {"layouts_ms": {}, "layouts_accuracy": {}, "chosen": layout}
        best = record["chosen"]
        if debug:
            from yolo_compress.quantize.debug import layer_drift

            record["drift"] = layer_drift(fp32, paths[best], reader)
        save_with_metadata(compact_qdq_names(onnx.load(str(paths[best]))), fp32, dest)
    return dest, record


def convert_fp16(fp32: Path, dest: Path) -> Path:
    """FP16 weights and activations with float32 inputs/outputs, via ONNX Runtime's converter (as Ultralytics does)."""
    from onnxruntime.transformers import float16

    model = float16.convert_float_to_float16(onnx.load(str(fp32)), keep_io_types=True)
    return save_with_metadata(model, fp32, dest)


def quantize_weights_dynamic(fp32: Path, dest: Path) -> Path:
    """Dynamic INT8: weights stored as int8, activations quantized at run time (ConvInteger); the decode stays float."""
    with scratch_dir(dest.parent) as tmp:
        pre = preprocess(fp32, tmp / "pre.onnx")
        graph = onnx.load(str(pre), load_external_data=False).graph
        out = tmp / "dyn.onnx"
        quantize_dynamic(
            str(pre), str(out), weight_type=QuantType.QInt8, reduce_range=not has_vnni(),
            op_types_to_quantize=sorted(WEIGHTED_OPS), nodes_to_exclude=sorted(decode_tail(graph)),
        )
        save_with_metadata(onnx.load(str(out)), fp32, dest)
    return dest
