"""Deployment quantization: FP32/FP16/INT8 ONNX (ONNX Runtime) and optional OpenVINO INT8 of Ultralytics detectors."""

from yolo_compress.quantize.core import quantize

__all__ = ["quantize"]
