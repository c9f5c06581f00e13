from copy import deepcopy

import pytest
import torch
from ultralytics.nn.tasks import DetectionModel, SegmentationModel

from yolo_compress.cfg import ArgumentError
from yolo_compress.distill import FeatureBasedDistiller, KnowledgeDistiller, ResponseBasedDistiller, YOLODistiller
from yolo_compress.distill.adapters import ATTR, detached

NAMES = {0: "a", 1: "b", 2: "c"}


def _model(cfg: str = "yolo26n.yaml", nc: int = 3, cls=DetectionModel) -> torch.nn.Module:
    torch.manual_seed(0)
    m = cls(cfg, nc=nc, verbose=False)
    m.names = dict(NAMES) if nc == 3 else {i: str(i) for i in range(nc)}
    return m


@pytest.fixture(scope="module")
def pair():
    return _model("yolo26n.yaml"), _model("yolo26s.yaml")


def _terms(distiller, img):
    distiller.student.train()
    return distiller.terms(distiller.student(img), distiller.teacher_preds(img))


@pytest.mark.parametrize("cls", [ResponseBasedDistiller, FeatureBasedDistiller, YOLODistiller])
@pytest.mark.parametrize("cfg", ["yolo26n.yaml", "yolov8n.yaml"])
def test_losses_zero_for_identical_student_and_grow_when_different(cls, cfg):
    student = _model(cfg)
    teacher = deepcopy(student)
    d = cls(teacher_model=teacher, student_model=student, temperature=2.0)
    img = torch.rand(2, 3, 64, 64)
    student.eval()  # same BatchNorm statistics as the eval-mode teacher
    same = d.terms(student(img), d.teacher_preds(img))
    assert same and all(v.abs() < 1e-4 for v in same.values()), same
    with torch.no_grad():
        for p in student.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    differ = d.terms(student(img), d.teacher_preds(img))
    assert all(differ[k] > 10 * same[k].abs() + 1e-5 for k in differ), (same, differ)


def test_adapters_get_gradients_teacher_does_not_change(pair):
    student, teacher = deepcopy(pair[0]), deepcopy(pair[1])
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    d = YOLODistiller(teacher_model=teacher, student_model=student)
    d.attach()
    assert getattr(student, ATTR) is d.adapters
    opt = torch.optim.SGD(student.parameters(), lr=0.1)  # the student's optimizer includes the adapters
    assert {id(p) for p in d.parameters()} <= {id(p) for g in opt.param_groups for p in g["params"]}
    student.train()
    teacher.train()  # must not matter: the distiller runs the teacher in eval mode
    img = torch.rand(2, 3, 64, 64)
    loss = sum(d.terms(student(img), d.teacher_preds(img)).values())
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in d.parameters())
    assert all(p.grad is None and not p.requires_grad for p in teacher.parameters())
    opt.step()
    assert not teacher.training
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())


def test_adapters_strip_and_state_dicts_without_them_load(pair):
    student = deepcopy(pair[0])
    d = FeatureBasedDistiller(teacher_model=pair[1], student_model=student)
    d.attach()
    with detached(student):
        stock = deepcopy(student.state_dict())
        assert not any(ATTR in k for k in stock) and not hasattr(student, ATTR)
    assert hasattr(student, ATTR)
    student.load_state_dict(stock)  # strict: a stripped checkpoint still loads (resume, NaN recovery)


def test_alpha_combines_as_seeds_describe(pair):
    d = ResponseBasedDistiller(teacher_model=pair[1], student_model=pair[0], alpha=0.7)
    assert d.combine(torch.tensor(10.0), torch.tensor(20.0)).item() == pytest.approx(0.3 * 10 + 0.7 * 20)


@pytest.mark.parametrize(
    "teacher, message",
    [
        (lambda: _model("yolo26s.yaml", nc=4), "4 classes"),
        (lambda: _model("yolo26n-p2.yaml"), "strides"),
        (lambda: _model("yolo26n-seg.yaml", cls=SegmentationModel), "'segment' model"),
        (lambda: "missing/teacher.pt", "does not exist"),
        (lambda: "teacher.onnx", "Ultralytics .pt files"),
    ],
)
def test_incompatible_teacher_fails_fast(pair, teacher, message):
    with pytest.raises(ArgumentError, match=message):
        KnowledgeDistiller(teacher_model=teacher(), student_model=pair[0])


def test_different_class_names_refused(pair):
    teacher = deepcopy(pair[1])
    teacher.names = {0: "a", 1: "b", 2: "z"}
    with pytest.raises(ArgumentError, match="class names"):
        KnowledgeDistiller(teacher_model=teacher, student_model=pair[0])
