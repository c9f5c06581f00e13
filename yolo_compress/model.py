"""`yolo_compress.YOLO`: Ultralytics' YOLO whose detection training understands the compression arguments."""

from __future__ import annotations

from ultralytics import YOLO as _UltralyticsYOLO

from yolo_compress.trainer import CompressionTrainer


class YOLO(_UltralyticsYOLO):
    """Drop-in replacement for `ultralytics.YOLO`; `.train(l1_regularization=True, ...)` works as the seeds show."""

    @property
    def task_map(self) -> dict:
        tasks = super().task_map
        tasks["detect"] = {**tasks["detect"], "trainer": CompressionTrainer}
        return tasks
