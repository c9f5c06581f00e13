"""Knowledge distillation for YOLO students: response, feature and combined distillers, and the trainer technique."""

from yolo_compress.distill.distillers import (
    FeatureBasedDistiller,
    KnowledgeDistiller,
    ResponseBasedDistiller,
    YOLODistiller,
)

__all__ = ["FeatureBasedDistiller", "KnowledgeDistiller", "ResponseBasedDistiller", "YOLODistiller"]
