"""yolo-compress: make Ultralytics YOLO detectors smaller and faster with little accuracy loss."""

__version__ = "0.1.0"

from yolo_compress.checkpoints import enforce_safe_load

enforce_safe_load()  # before anything imports Ultralytics: checkpoints are code (yolo_compress.checkpoints)


from yolo_compress.model import YOLO  # noqa: E402
from yolo_compress.trainer import CompressionTrainer, Technique  # noqa: E402

__all__ = ("YOLO", "CompressionTrainer", "Technique", "__version__")
