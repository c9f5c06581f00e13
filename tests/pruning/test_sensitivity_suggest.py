"""Channel sensitivity simulates pruning exactly; suggest plans land on the FLOPs target; layer pruning in training."""

import copy

import pytest
import torch
from ultralytics.nn.tasks import load_checkpoint

from yolo_compress import YOLO, measure
from yolo_compress.cfg import ArgumentError
from yolo_compress.pruning.channel import ChannelPruner
from yolo_compress.commands.prune import run as prune_command
from yolo_compress.pruning.layer import find_blocks
from yolo_compress.pruning.adapters import clean_copy
from yolo_compress.pruning import sensitivity
from yolo_compress.pruning.sensitivity import channel_sensitivity, distortion, masked_distortions, reference, save
from yolo_compress.pruning.plan import load_plan, write_plan_yaml
from yolo_compress.pruning.suggest import suggest


def _live(model: torch.nn.Module) -> torch.nn.Module:
    """Random weights whose signal reaches the head. With the default init the box outputs of yolo26n barely vary over
    a batch, so a distortion relative to that variation is rounding noise, not the effect of a mask."""
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    return model.eval()


@pytest.mark.slow
def test_masked_channel_sensitivity_equals_real_pruning(build, tmp_path):
    model = _live(build("yolo26n.yaml", nc=3))
    images = torch.rand(2, 3, 64, 64)
    rows = channel_sensitivity(model, images, ratios=(0.5,))
    assert rows and all(r["distortion"] >= 0 for r in rows)
    row = max((r for r in rows if r["type"] == "regular" and "[" not in r["group"]), key=lambda r: r["distortion"])
    assert row["distortion"] > 0
    pruned = copy.deepcopy(model)
    ChannelPruner(pruned, 0.0, layer_ratios={row["group"]: 0.5}).prune()
    assert measure.count_params(pruned) < measure.count_params(model)
    real = distortion(pruned, images, reference(model, images))
    assert real == pytest.approx(row["distortion"], rel=1e-3)
    csv_path, png = save(rows, tmp_path / "channel_sensitivity", "group")
    assert csv_path.read_text().startswith("group,type,ratio,before,after,distortion")
    assert png.stat().st_size > 0


@pytest.mark.slow
@pytest.mark.parametrize("pixels", [2**18, 1])  # six candidates in one pass; one pass each
def test_masks_equal_zeroing_batchnorm_one_candidate_at_a_time(build, monkeypatch, pixels):
    monkeypatch.setattr(sensitivity, "PIXELS_PER_PASS", pixels)
    model = _live(build("yolo26n.yaml", nc=3))
    images = torch.rand(2, 3, 64, 64)
    ref = reference(model, images)
    plan = ChannelPruner(clean_copy(model), 0.5).prune()
    candidates = [g["removed"] for g in plan.groups if g["after"] != g["before"]][:6]
    batched = masked_distortions(model, images, candidates)
    norms = dict(model.named_modules())
    for cand, d in zip(candidates, batched):
        trial = copy.deepcopy(model)
        for bn_name, idxs in cand.items():
            tnorms = dict(trial.named_modules())
            tnorms[bn_name].weight.data[idxs] = 0
            tnorms[bn_name].bias.data[idxs] = 0
        assert d == pytest.approx(distortion(trial, images, ref), rel=1e-3, abs=1e-9)
    assert len(set(batched)) == len(batched)  # each copy saw only its own mask
    assert all(norms[b].weight.abs().sum() > 0 for b in candidates[0])  # the model itself is not modified


@pytest.mark.slow
def test_suggest_plan_applied_by_prune_meets_flops_target(build, tmp_path):
    from yolo_compress.pruning.checkpoint import save_checkpoint

    model = build("yolo26n.yaml", nc=3).eval()
    src = save_checkpoint(model, tmp_path / "m.pt")
    model = load_checkpoint(src)[0].float().eval()  # the half-precision round trip prune will see
    plan, blocks, channels = suggest(model, torch.rand(2, 3, 64, 64), 0.5, imgsz=64)
    assert plan["remove_blocks"] and plan["layer_ratios"]
    path = write_plan_yaml(plan, tmp_path / "plan.yaml", "# test\n")
    assert load_plan(path)["remove_blocks"] == plan["remove_blocks"]
    out = prune_command({"model": str(src), "plan": str(path), "imgsz": 64, "project": str(tmp_path),
                         "name": "p"})
    kept = measure.gflops(load_checkpoint(out)[0], 64) / measure.gflops(model, 64)
    assert abs(kept / 0.5 - 1) <= 0.05
    assert len(find_blocks(load_checkpoint(out)[0])) < len(blocks)
    assert (out.parent.parent / "removed_blocks.csv").is_file()


def test_prune_layer_method_needs_a_target(tmp_path, build):
    from yolo_compress.pruning.checkpoint import save_checkpoint

    src = save_checkpoint(build("yolo26n.yaml", nc=3), tmp_path / "m.pt")
    with pytest.raises(ArgumentError, match="prune_blocks"):
        prune_command({"model": str(src), "pruning_method": "layer", "imgsz": 64, "project": str(tmp_path)})
    with pytest.raises(ArgumentError, match="target_flops=1.5"):
        prune_command({"model": str(src), "pruning_method": "layer", "target_flops": 1.5})


@pytest.mark.slow
def test_layer_pruning_during_training(synth_data, tmp_path):
    YOLO("yolo26n.yaml").train(data=str(synth_data), project=str(tmp_path), name="l", epochs=2, pruning=True,
                               pruning_method="layer", prune_blocks=3, prune_at_epoch=1, imgsz=64, batch=8,
                               workers=0, plots=False, seed=0, exist_ok=True, device="cpu")
    best = load_checkpoint(tmp_path / "l" / "weights" / "best.pt")[0]
    stock = YOLO("yolo26n.yaml").model
    assert len(find_blocks(best)) < len(find_blocks(stock))
    assert measure.count_params(best) < measure.count_params(stock)
    assert "removed block" in (tmp_path / "l" / "prune_plan.txt").read_text()
