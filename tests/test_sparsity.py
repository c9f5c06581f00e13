import csv
import subprocess
import sys

import pytest
import torch
import yaml
from torch import nn
from ultralytics.nn.tasks import DetectionModel

from conftest import TRAIN_KW
from yolo_compress import YOLO
from yolo_compress.sparsity import (
    BatchNormL1Regularizer,
    L1Regularizer,
    StructuredL1Regularizer,
    get_bn_l1_loss,
    head_prediction_modules,
)

COLUMNS = ("sparsity/weights", "sparsity/bn_gamma", "sparsity/bn_mean_abs_gamma")


def _toy() -> nn.Sequential:
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.SiLU(), nn.Conv2d(4, 2, 1), nn.BatchNorm2d(2))
    with torch.no_grad():
        m[0].weight[0, 0, 0, 0] = 0.0  # sign(0) = 0: an exact zero gets no push
        m[0].weight[1] = 0.0  # a dead channel: the group sub-gradient there is 0, not NaN
        m[1].weight.copy_(torch.tensor([0.5, -0.2, 0.0, 1.0]))
    return m


def _grads(m: nn.Module) -> dict[str, torch.Tensor]:
    return {k: p.grad.clone() for k, p in m.named_parameters() if p.grad is not None}


def test_l1_gradient_is_lambda_sign_on_convs_only():
    m = _toy()
    L1Regularizer(1e-3).apply_gradient(m, factor=2.0)
    g = _grads(m)
    assert set(g) == {"0.weight", "3.weight"}
    for k in g:
        assert torch.equal(g[k], 2.0 * 1e-3 * torch.sign(m.get_parameter(k).detach()))
    assert g["0.weight"][0, 0, 0, 0] == 0


def test_group_l1_gradient_is_normalized_channel_and_matches_autograd():
    m = _toy()
    StructuredL1Regularizer(1e-2).apply_gradient(m)
    w = m[0].weight.detach()
    expected = 1e-2 * w / w.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    expected[1] = 0.0
    assert torch.allclose(m[0].weight.grad, expected)
    assert torch.count_nonzero(m[0].weight.grad[1]) == 0
    direct = _grads(m)
    m.zero_grad(set_to_none=True)
    StructuredL1Regularizer(1e-2)(m).backward()
    for k, v in _grads(m).items():
        assert torch.allclose(direct[k], torch.nan_to_num(v), atol=1e-7), k


def test_bn_gradient_is_lambda_sign_on_gammas_only():
    m = _toy()
    BatchNormL1Regularizer(1e-4).apply_gradient(m)
    g = _grads(m)
    assert set(g) == {"1.weight", "4.weight"}
    assert torch.equal(g["1.weight"], 1e-4 * torch.tensor([1.0, -1.0, 0.0, 1.0]))


def test_direct_subgradient_equals_loss_term_under_batch_sum_accumulation_and_amp_scale():
    """The trainer's form: grads of S * sum_k(det_k) plus S*B*A*lambda*sign(gamma) after backward, versus the loss-term
    form where every batch's loss is S * (det_k + B * lambda * sum|gamma|) (Ultralytics' loss is summed over B)."""
    lam, batch, accumulate, scale = 3e-3, 4, 3, 1024.0
    m = _toy()
    xs = [torch.randn(batch, 3, 8, 8, generator=torch.Generator().manual_seed(k)) for k in range(accumulate)]

    def det(x):  # a per-image loss summed over the batch, like Ultralytics' loss * batch_size
        return m(x).pow(2).mean((1, 2, 3)).sum()

    for x in xs:
        (scale * (det(x) + batch * get_bn_l1_loss(m, lam))).backward()
    as_loss = _grads(m)
    m.zero_grad(set_to_none=True)
    for x in xs:
        (scale * det(x)).backward()
    BatchNormL1Regularizer(lam).apply_gradient(m, factor=scale * batch * accumulate)
    direct = _grads(m)
    assert as_loss.keys() == direct.keys()
    for k in direct:
        assert torch.allclose(direct[k], as_loss[k], rtol=1e-5, atol=1e-5), k


def test_detect_prediction_convs_are_excluded_by_default():
    model = DetectionModel("yolo26n.yaml", nc=2, verbose=False)
    head = model.model[-1]
    finals = [b[-1] for name in ("cv2", "cv3", "one2one_cv2", "one2one_cv3") for b in getattr(head, name)]
    assert len(finals) == 12 and all(f in head_prediction_modules(model) for f in finals)
    for cls in (L1Regularizer, StructuredL1Regularizer):
        model.zero_grad(set_to_none=True)
        cls(1e-3).apply_gradient(model)
        assert all(f.weight.grad is None for f in finals)
        assert head.cv2[0][0].conv.weight.grad is not None and model.model[0].conv.weight.grad is not None
        cls(1e-3, exclude_head=False).apply_gradient(model)
        assert all(f.weight.grad is not None for f in finals)


def test_get_sparsity_is_exact_on_hand_made_tensors():
    m = nn.Sequential(nn.Conv2d(1, 4, 1, bias=False), nn.BatchNorm2d(4), nn.Conv2d(4, 2, 1, bias=False))
    with torch.no_grad():
        m[0].weight.copy_(torch.tensor([0.0, 5e-4, -2e-3, 1.0]).view(4, 1, 1, 1))
        m[2].weight.copy_(torch.tensor([[0.0, 1e-4, -9e-4, 0.0], [1.0, 0.0, 0.0, 0.0]]).view(2, 4, 1, 1))
        m[1].weight.copy_(torch.tensor([0.0, 5e-3, -2e-2, 1.0]))
    w = L1Regularizer.get_sparsity(m, threshold=1e-3)
    assert w["overall_sparsity"] == pytest.approx(9 / 12) and w["layers"] == {"0": 0.5, "2": 0.875}
    c = StructuredL1Regularizer.get_sparsity(m, threshold=1e-3)
    assert c["overall_sparsity"] == pytest.approx(3 / 6) and c["layers"] == {"0": 0.5, "2": 0.5}
    b = BatchNormL1Regularizer.get_sparsity(m, threshold=1e-2)
    assert b["overall_sparsity"] == 0.5 and b["layers"] == {"1": 0.5}
    assert get_bn_l1_loss(m, 0.1).item() == pytest.approx(0.1 * (5e-3 + 2e-2 + 1.0))


def _columns(run) -> dict[str, float]:
    with open(run / "results.csv") as f:
        row = list(csv.DictReader(f))[-1]
    return {k: float(row[k]) for k in COLUMNS}


@pytest.mark.slow
def test_training_applies_penalty_per_image_and_monitors(synth_data, tmp_path, monkeypatch):
    factors = []
    original = BatchNormL1Regularizer.apply_gradient

    def spy(self, model, factor=1.0):
        factors.append(factor)
        return original(self, model, factor)

    monkeypatch.setattr(BatchNormL1Regularizer, "apply_gradient", spy)
    kw = {**TRAIN_KW, "nbs": TRAIN_KW["batch"]}  # accumulate = 1: each step carries exactly `batch` images
    YOLO("yolo26n.yaml").train(data=str(synth_data), project=str(tmp_path), name="sp", l1_regularization=True,
                               structured_l1=True, lambda_l1=1e-4, lambda_bn=1e-3, **kw)
    assert factors and all(f == TRAIN_KW["batch"] for f in factors)
    cols = _columns(tmp_path / "sp")
    assert 0 <= cols["sparsity/bn_gamma"] <= 1 and cols["sparsity/bn_mean_abs_gamma"] > 0
    assert (tmp_path / "sp" / "bn_gamma_hist.png").stat().st_size > 0


@pytest.mark.slow
def test_cli_cfg_yaml_runs_sparsity_training(synth_data, tmp_path):
    cfg = tmp_path / "sparsity.yaml"
    cfg.write_text(yaml.safe_dump({
        "task": "detect", "mode": "train", "model": "yolo26n.yaml", "data": str(synth_data), "epochs": 1,
        "imgsz": 64, "batch": 8, "workers": 0, "plots": False, "project": str(tmp_path), "name": "cfgsp",
        "l1_regularization": True, "lambda_l1": 0.0, "lambda_bn": 1e-3,
    }))
    r = subprocess.run([sys.executable, "-m", "yolo_compress.cli", f"cfg={cfg}"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "BatchNormL1Regularizer(0.001)" in r.stdout + r.stderr
    assert set(COLUMNS) <= set(_columns(tmp_path / "cfgsp"))
    assert (tmp_path / "cfgsp" / "bn_gamma_hist.png").exists()
