"""Calibration images for static INT8: the user's own images, letterboxed exactly as Ultralytics' val does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from onnxruntime.quantization import CalibrationDataReader
from ultralytics.utils import LOGGER

from yolo_compress.data import images

MIN_RECOMMENDED = 300
CALIB_STRIDE = 32  # images per calibration chunk: ONNX Runtime keeps every intermediate tensor of a chunk in memory


def calibration_dataset(data: str | Path, imgsz: int, fraction: float = 1.0, split: str = "train"):
    """Ultralytics' YOLODataset in evaluation mode (LetterBox to imgsz, no augmentation) over `split` of `data`.

    The train split is the default so that the val split used to report mAP stays unseen by calibration.
    """
    if data is None or not str(data):
        raise ValueError("'data' is required for INT8 calibration: pass data=path/to/data.yaml with your own images.")
    if not Path(str(data)).exists():
        raise FileNotFoundError(f"'data={data}' does not exist. Pass a dataset YAML (data=path/to/data.yaml).")
    dataset = images.dataset(data, imgsz, split, fraction, what="calibration images")
    n = len(dataset)
    if n < MIN_RECOMMENDED:
        LOGGER.warning(f"INT8 calibration on {n} images; >= {MIN_RECOMMENDED} are recommended for stable ranges.")
    return dataset


class LetterboxReader(CalibrationDataReader):
    """Feeds one letterboxed image at a time as float32 NCHW in [0, 1]; rewind() restarts for another pass."""

    def __init__(self, dataset, input_name: str = "images", limit: int | None = None):
        self.dataset, self.input_name = dataset, input_name
        self.n = len(dataset) if limit is None else min(limit, len(dataset))
        self.start, self.end = 0, self.n
        self.i = 0

    def __len__(self) -> int:
        return self.n

    def image(self, i: int) -> np.ndarray:
        im = self.dataset[i]["img"].numpy()  # uint8 CHW RGB after LetterBox + Format
        return (im.astype(np.float32) / 255.0)[None]

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.start + self.i >= self.end:
            return None
        self.i += 1
        return {self.input_name: self.image(self.start + self.i - 1)}

    def set_range(self, start_index: int, end_index: int) -> None:
        """Used by ONNX Runtime's strided calibration, which collects ranges chunk by chunk to bound memory."""
        self.start, self.end, self.i = start_index, min(end_index, self.n), 0

    def rewind(self, limit: int | None = None) -> None:
        """Start a new pass over the first `limit` images (all by default)."""
        self.start, self.end, self.i = 0, self.n if limit is None else min(limit, self.n), 0


def calibration_reader(data: str | Path, imgsz: int, fraction: float = 1.0, stride: int = CALIB_STRIDE) -> LetterboxReader:
    """Reader over the calibration images, trimmed to a multiple of `stride` (ONNX Runtime calibrates in chunks of
    `stride` images to bound memory and needs whole chunks; at most stride-1 images are left out)."""
    n = len(dataset := calibration_dataset(data, imgsz, fraction))
    return LetterboxReader(dataset, limit=n if n <= stride else n - n % stride)
