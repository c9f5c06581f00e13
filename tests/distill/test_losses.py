import pytest
import torch

from yolo_compress.distill import losses

torch.manual_seed(0)


def test_binary_kl_zero_for_equal_logits_and_grows_with_difference():
    z = torch.randn(2, 5, 30) * 3
    assert losses.binary_kl(z, z, 4.0).abs().max() < 1e-5
    near, far = (losses.binary_kl(z + d, z, 4.0).sum() for d in (0.5, 3.0))
    assert 0 < near < far


def test_binary_kl_is_per_class_not_softmax():
    """Raising every logit equally changes sigmoid probabilities, so it must cost (a softmax KL would be 0)."""
    z = torch.randn(1, 4, 10)
    assert losses.binary_kl(z + 2.0, z, 1.0).sum() > 0.1


def test_class_kd_counts_student_false_positives():
    teacher = torch.full((1, 3, 20), -8.0)
    student = teacher.clone()
    student[0, 1, 5] = 6.0
    assert losses.class_kd(student, teacher, 2.0) > 1.0
    assert losses.class_kd(teacher, teacher, 2.0) < 1e-6


@pytest.mark.parametrize("reg_max", [1, 16])
def test_box_kd_zero_when_equal_and_grows(reg_max):
    boxes = torch.rand(2, 4 * reg_max, 12) * (3 if reg_max == 1 else 1)
    anchors = torch.rand(12, 2) * 8
    w = torch.rand(2, 12)
    iou, l1 = losses.box_kd(boxes, boxes, anchors, w, reg_max, reg_max)
    assert iou.abs() < 1e-5 and l1.abs() < 1e-6
    iou2, l12 = losses.box_kd(boxes + 0.5, boxes, anchors, w, reg_max, reg_max)
    if reg_max == 1:
        assert iou2 > 0.01 and l12 > 0.1
    else:
        assert iou2 >= 0 and l12 >= 0


def test_box_kd_across_reg_max_compares_decoded_boxes():
    """A DFL teacher (reg_max=16) and a reg_max=1 student agree when their expected distances agree."""
    logits = torch.randn(1, 64, 6)
    expected = losses.distances(logits, 16)
    iou, l1 = losses.box_kd(expected, logits, torch.rand(6, 2), torch.ones(1, 6), 1, 16)
    assert iou.abs() < 1e-5 and l1.abs() < 1e-5


def test_dfl_kd():
    t = torch.randn(2, 64, 10)
    w = torch.ones(2, 10)
    assert losses.dfl_kd(t, t, 16, 2.0, w).abs() < 1e-5
    assert losses.dfl_kd(t + torch.randn_like(t), t, 16, 2.0, w) > 0.01


def test_cwd_zero_when_equal_invariant_to_shift_and_grows():
    f = torch.randn(2, 8, 5, 5)
    assert losses.cwd(f, f, 1.0).abs() < 1e-6
    assert losses.cwd(f + 3.0, f, 1.0).abs() < 1e-5  # per-channel spatial distribution unchanged
    assert losses.cwd(f.flip(-1), f, 1.0) > losses.cwd(f + 0.1 * torch.randn_like(f), f, 1.0) > 0


def test_feature_mse_weighting():
    f = torch.randn(1, 4, 2, 2)
    g = f.clone()
    g[..., 0, 0] += 1.0  # differs only at location 0
    assert losses.feature_mse(f, f).abs() < 1e-7
    on = losses.feature_mse(g, f, torch.tensor([[1.0, 0, 0, 0]]))
    off = losses.feature_mse(g, f, torch.tensor([[0.0, 1, 1, 1]]))
    assert on > 0.5 and off < 1e-6
