"""`yolo-compress train model=... data=... [compression arguments]`: Ultralytics training through CompressionTrainer."""

from __future__ import annotations

from typing import Any

from yolo_compress.commands.base import ArgumentError, command_spec

MIN_IMGSZ = command_spec("prune")["imgsz"]["min"]  # the bound every other command's imgsz has (default.yaml)


def _check_data(data: Any) -> None:
    """The dataset as Ultralytics will read it, refused in one line naming `data` (a traceback otherwise)."""
    from ultralytics.data.utils import check_det_dataset

    try:
        check_det_dataset(str(data), autodownload=False)
    except Exception as e:  # Ultralytics raises many kinds here (missing file, YAML syntax, missing keys)
        raise ArgumentError(f"'data={data}' cannot be used: {' '.join(str(e).split())}") from e


def run(args: dict[str, Any]) -> None:
    """`yolo-compress train key=value ...`: Ultralytics training with the compression arguments. The compression
    arguments are checked by the trainer against default.yaml's train section (stock `YOLO.train` calls reach it
    without this command), Ultralytics' own by Ultralytics."""
    from yolo_compress import checkpoints
    from yolo_compress.model import YOLO

    args = dict(args)
    model = args.pop("model", None)
    if not model:
        raise ArgumentError("'model' is required, e.g. 'yolo-compress train model=yolo26n.yaml data=data.yaml'.")
    imgsz = args.get("imgsz")
    if isinstance(imgsz, bool) or (isinstance(imgsz, (int, float)) and imgsz < MIN_IMGSZ):
        raise ArgumentError(f"'imgsz={imgsz}' is invalid. Valid 'imgsz' values are integers >= {MIN_IMGSZ}.")
    if str(model).endswith(".pt"):
        ckpt = checkpoints.load_dict(model)  # refused here in one line, before Ultralytics loads it
        if args.get("resume") and not checkpoints.resumable(ckpt):
            raise ArgumentError(f"'model={model}' is a finished run's checkpoint: nothing to resume. Fine-tune it with "
                                "'model=' and no 'resume', or resume that run's weights/last.pt while it is unfinished.")
    if args.get("data") and not args.get("resume"):
        _check_data(args["data"])
    try:
        YOLO(model).train(**args)
    except RuntimeError as e:
        # Ultralytics has no error type for a dataset whose every label it refused; its message is the only sign.
        if "No valid images found" not in str(e):
            raise
        issues = [line.strip() for line in str(e).splitlines()[1:] if "ignoring" in line]
        raise ArgumentError(f"'data={args.get('data')}' has no usable training images: every label was refused"
                            + (f" (first: {issues[0].split(': ', 1)[-1]})" if issues else "") + ".") from e

