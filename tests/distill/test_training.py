import csv
import subprocess
import sys

import pytest

from conftest import TRAIN_KW
from yolo_compress import YOLO
from yolo_compress.cfg import ArgumentError
from ultralytics.nn.tasks import DetectionModel

from yolo_compress.distill.adapters import ATTR
from yolo_compress.pruning.checkpoint import save_checkpoint


def _columns(run) -> list[str]:
    with open(run / "results.csv") as f:
        return [c.strip() for c in next(csv.reader(f))]


def _rows(run) -> int:
    with open(run / "results.csv") as f:
        return sum(1 for _ in f) - 1


@pytest.mark.parametrize("distill_type", ["response", "feature", "yolo"])
def test_one_epoch_per_type_saves_stock_model(synth_data, trained_pt, tmp_path, distill_type):
    YOLO("yolo26n.yaml").train(data=str(synth_data), project=str(tmp_path), name=distill_type, distillation=True,
                               teacher_model=str(trained_pt), distill_type=distill_type, **TRAIN_KW)
    run = tmp_path / distill_type
    assert "train/kd" in _columns(run)
    # best.pt loads and predicts with stock Ultralytics in a process that never imported yolo_compress
    code = (
        "import sys; from ultralytics import YOLO; m = YOLO(sys.argv[1]); "
        f"assert not any('{ATTR}' in k for k in m.model.state_dict()), 'adapters saved'; "
        "assert type(m.model).__name__ == 'DetectionModel'; m.predict(sys.argv[2], imgsz=64, verbose=False)"
    )
    from ultralytics.utils import ASSETS

    subprocess.run([sys.executable, "-c", code, str(run / "weights" / "best.pt"), str(ASSETS / "bus.jpg")],
                   check=True, env={"YOLO_OFFLINE": "1", "PATH": ""})


class _Stop(Exception):
    pass


def test_resume_rebuilds_teacher_and_adapters(synth_data, trained_pt, tmp_path):
    def stop(trainer):
        raise _Stop

    model = YOLO("yolo26n.yaml")
    model.add_callback("on_model_save", stop)
    kw = {**TRAIN_KW, "epochs": 2}
    with pytest.raises(_Stop):
        model.train(data=str(synth_data), project=str(tmp_path), name="r", distillation=True,
                    teacher_model=str(trained_pt), distill_type="yolo", distill_feature_loss="mse", **kw)
    last = tmp_path / "r" / "weights" / "last.pt"
    YOLO(str(last)).train(resume=True)
    assert _rows(tmp_path / "r") == 2 and "train/kd" in _columns(tmp_path / "r")


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"distill_alpha": 1.0}, "distill_alpha=1.0"),
        ({"teacher_model": None}, "'teacher_model' is required"),
        ({"teacher_model": "nope/teacher.pt"}, "does not exist"),
        ({"teacher_model": "OTHER_NC"}, "classes but the student has"),
    ],
)
def test_bad_arguments_refused_before_training(synth_data, trained_pt, tmp_path, extra, message):
    args = {"teacher_model": str(trained_pt), **extra}
    if args["teacher_model"] == "OTHER_NC":
        args["teacher_model"] = str(save_checkpoint(DetectionModel("yolo26n.yaml", nc=7, verbose=False),
                                                    tmp_path / "teachers" / "nc7.pt"))
    runs = tmp_path / "runs"
    with pytest.raises(ArgumentError, match=message):
        YOLO("yolo26n.yaml").train(data=str(synth_data), project=str(runs), name="bad", distillation=True,
                                   **args, **TRAIN_KW)
    assert not runs.exists() or not any(runs.iterdir()), "a refused run left a run folder behind"
