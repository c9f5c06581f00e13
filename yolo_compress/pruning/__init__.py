"""Structural channel pruning for Ultralytics YOLO detectors (YOLOv8, YOLO11, YOLO12, YOLO26)."""

from yolo_compress.pruning.channel import ChannelPruner, PruningPlan, prune_model

__all__ = ("ChannelPruner", "PruningPlan", "prune_model")
