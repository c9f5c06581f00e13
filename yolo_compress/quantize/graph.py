"""Nodes of an Ultralytics ONNX graph that must stay in float: the detection head's decode tail and attention.

The Detect head ends in raw per-level box and class convolutions; everything after them (reshape, concat, DFL
softmax, anchor arithmetic, sigmoid, final concat of pixels and probabilities) is the decode. Quantizing it puts
box pixels (0..imgsz) and class probabilities (0..1) under one INT8 scale, which rounds every score to zero.
"""

from __future__ import annotations

import re

import onnx

_MODULE = re.compile(r"^/model\.(\d+)/")


def head_prefix(graph: onnx.GraphProto) -> str:
    """Name prefix of the last top-level module (the Detect head), e.g. '/model.23/'."""
    indices = [int(m.group(1)) for n in graph.node if (m := _MODULE.match(n.name))]
    if not indices:
        raise ValueError(
            "ONNX graph has no '/model.N/' node names: it was not exported by Ultralytics' exporter, so the "
            "detection head cannot be located. Export with YOLO(model).export(format='onnx')."
        )
    return f"/model.{max(indices)}/"


def head_nodes(graph: onnx.GraphProto) -> set[str]:
    """Every node of the Detect head: its box/class convolution branches as well as the decode tail."""
    prefix = head_prefix(graph)
    return {n.name for n in graph.node if n.name.startswith(prefix)}


def decode_tail(graph: onnx.GraphProto) -> set[str]:
    """Names of the nodes from the head's first Reshape of a convolution output to the graph outputs."""
    prefix = head_prefix(graph)
    producer = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    starts = [
        n for n in graph.node
        if n.name.startswith(prefix) and n.op_type == "Reshape" and getattr(producer.get(n.input[0]), "op_type", "") == "Conv"
    ]
    if not starts:
        raise ValueError(f"no Reshape of a convolution output in the detection head '{prefix}' of the ONNX graph.")
    tail: set[str] = set()
    stack = list(starts)
    while stack:
        node = stack.pop()
        if node.name not in tail:
            tail.add(node.name)
            stack.extend(c for o in node.output for c in consumers.get(o, []))
    return tail


def attention_nodes(graph: onnx.GraphProto) -> set[str]:
    """Softmax nodes and MatMuls of two activations (no weight initializer): the attention core of C2PSA/A2C2f.

    Its softmax probabilities are ~1/tokens each, so one uint8 step (1/255) rounds most of them away (measured
    SQNR ~3 dB on YOLO26n at 320, docs/quantization.md); these ops are a negligible share of the compute.
    """
    weights = {t.name for t in graph.initializer}
    return {
        n.name for n in graph.node
        if n.op_type == "Softmax" or (n.op_type == "MatMul" and not any(i in weights for i in n.input))
    }
