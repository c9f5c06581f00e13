from types import SimpleNamespace

import pytest
from ultralytics.nn.tasks import DetectionModel, load_checkpoint

from yolo_compress.cfg import DEFAULTS, TRAIN_ARGS, ArgumentError, validate
from yolo_compress.distill.adapters import ATTR, head_input_channels
from yolo_compress.distill.technique import Distillation, kd_weight


def _trainer(model, teacher_pt, names, **compression):
    calls = {"rebuild": 0, "callbacks": []}
    c = SimpleNamespace(**{**DEFAULTS, "distillation": True, "teacher_model": str(teacher_pt), **compression})
    trainer = SimpleNamespace(
        compression=c, model=model, data={"names": names}, args=SimpleNamespace(box=7.5, cls=0.5, dfl=1.5, dis=6.0),
        add_callback=lambda event, fn: calls["callbacks"].append(event),
        rebuild_after_surgery=lambda: calls.__setitem__("rebuild", calls["rebuild"] + 1),
    )
    return trainer, calls


def test_alpha_becomes_a_weight_on_the_added_term():
    assert kd_weight(0.7) == pytest.approx(0.7 / 0.3)
    assert kd_weight(0.0) == 0.0
    with pytest.raises(ArgumentError, match="distill_alpha=1"):  # refused where every argument is checked
        validate({"distill_alpha": 1.0}, TRAIN_ARGS)


def test_type_and_features_flags(trained_pt):
    names = load_checkpoint(trained_pt)[0].names
    for kind, features, expect in [("response", False, (True, False)), ("feature", False, (False, True)),
                                   ("yolo", False, (True, True)), ("response", True, (True, True))]:
        t = Distillation(_trainer(None, trained_pt, names, distill_type=kind, distill_features=features)[0])
        assert (t.response, t.features) == expect


def test_adapters_follow_pruning_surgery(trained_pt):
    """When surgery changes the student's neck widths, adapters are rebuilt for them and the optimizer rebuilt once."""
    names = load_checkpoint(trained_pt)[0].names
    student = DetectionModel("yolo26n.yaml", nc=len(names), verbose=False)
    trainer, calls = _trainer(student, trained_pt, names, distill_type="feature")
    t = Distillation(trainer)
    t.on_model_ready()
    assert calls["callbacks"] == ["on_train_epoch_start"] and hasattr(student, ATTR)
    t._follow_surgery()
    assert calls["rebuild"] == 0  # nothing changed
    narrower = DetectionModel("yolo26n.yaml", nc=len(names), verbose=False)
    narrower.model[-1] = DetectionModel("yolo26s.yaml", nc=len(names), verbose=False).model[-1]  # other widths
    trainer.model = narrower
    t._follow_surgery()
    assert calls["rebuild"] == 1
    assert getattr(narrower, ATTR).in_channels == head_input_channels(narrower) != head_input_channels(student)
