"""yolo-compress: make Ultralytics YOLO detectors smaller and faster with little accuracy loss."""

__version__ = "0.1.0"

from yolo_compress.checkpoints import enforce_safe_load

enforce_safe_load()  # before anything imports Ultralytics: checkpoints are code (yolo_compress.checkpoints)

_LAZY = {"YOLO": "yolo_compress.model", "CompressionTrainer": "yolo_compress.trainer",
         "Technique": "yolo_compress.trainer"}
__all__ = ("YOLO", "CompressionTrainer", "Technique", "__version__")


def __getattr__(name: str):
    """`from yolo_compress import YOLO` imports torch and Ultralytics on first use only, so that the command line
    (e.g. `yolo-compress help`, argument errors) starts without them."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'yolo_compress' has no attribute {name!r}")
