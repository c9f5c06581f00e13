"""yolo-compress: make Ultralytics YOLO detectors smaller and faster with little accuracy loss."""

__version__ = "0.1.0"

from yolo_compress.model import YOLO
from yolo_compress.trainer import CompressionTrainer, Technique

__all__ = ("YOLO", "CompressionTrainer", "Technique", "__version__")
