"""Channel pruning: real size reduction, working forward, stock attributes, bn equivalence, shortcut ratios."""

import copy
import math

import pytest
import torch
import yaml
from torch import nn
from ultralytics.nn.modules.block import C2f
from ultralytics.utils.torch_utils import get_flops

from yolo_compress.pruning import ChannelPruner, prune_model
from yolo_compress.pruning.shortcuts import SHORTCUT_TYPES

MODELS = ("yolov8n.yaml", "yolo11n.yaml", "yolo12n.yaml", "yolo26n.yaml")


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("cfg", MODELS)
def test_half_ratio_removes_at_least_40_percent(cfg, build):
    model = build(cfg)
    params, flops = n_params(model), get_flops(model, 64)
    plan = prune_model(model, 0.5, "l1")
    assert n_params(model) <= 0.6 * params
    assert get_flops(model, 64) <= 0.6 * flops
    assert plan.params_after == n_params(model)
    model.train()
    out = model(torch.randn(2, 3, 64, 64))
    assert out  # raw training predictions
    model.eval()
    with torch.no_grad():
        y = model(torch.randn(1, 3, 64, 64))
    assert torch.isfinite(y[0]).all()
    for m in model.modules():  # stock classes with consistent attributes
        if isinstance(m, C2f):
            assert m.cv1.conv.out_channels == 2 * m.c
            x = torch.randn(1, m.cv1.conv.in_channels, 8, 8)
            assert torch.equal(m.forward_split(x), m(x))


def test_plan_lists_layers_with_channels_before_and_after(yolo26n):
    plan = ChannelPruner(yolo26n, 0.5, "l2", round_to=8).prune()
    by_name = {r["layer"]: r for r in plan.layers}
    assert by_name["model.0"]["before"] == 16 and by_name["model.0"]["after"] == 8
    head_out = [r for r in plan.layers if r["type"] == "fixed" and r["layer"].startswith("model.23.")]
    assert head_out and all(r["before"] == r["after"] for r in head_out)
    assert "model.0" in plan.table()


def test_frozen_checkpoint_is_pruned_like_a_trainable_one(build):
    """Ultralytics' loaders freeze every parameter; the stem must still be found and pruned."""
    trainable, frozen = build("yolo26n.yaml"), build("yolo26n.yaml")
    for p in frozen.parameters():
        p.requires_grad_(False)
    plans = [ChannelPruner(m, 0.5, "l2", round_to=8).prune() for m in (trainable, frozen)]
    assert plans[1].layers == plans[0].layers
    assert {r["layer"]: r["after"] for r in plans[1].layers}["model.0"] == 8


def _randomise_gammas(model: nn.Module) -> None:
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data = 0.5 + torch.rand(m.num_features, generator=gen)
            m.bias.data = torch.rand(m.num_features, generator=gen) - 0.5


@pytest.mark.slow
@pytest.mark.parametrize("cfg", MODELS)
def test_bn_importance_prunes_zeroed_channels_without_changing_outputs(cfg, build):
    model = build(cfg).eval()
    _randomise_gammas(model)
    probe = ChannelPruner(copy.deepcopy(model), 0.3, "bn").prune()  # learns groups, their BNs and counts
    modules = dict(model.named_modules())
    gen = torch.Generator().manual_seed(2)
    chosen = {}
    for g in probe.groups:
        idxs = sorted(torch.randperm(g["before"], generator=gen)[: g["before"] - g["after"]].tolist())
        chosen[g["group"]] = idxs
        for bn_name, offset in g["norms"].items():
            modules[bn_name].weight.data[[offset + i for i in idxs]] = 0
            modules[bn_name].bias.data[[offset + i for i in idxs]] = 0
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        ref = model(x)[0]
    plan = ChannelPruner(model, 0.3, "bn").prune()
    assert plan.params_after < plan.params_before
    for g in plan.groups:
        for bn_name, offset in g["norms"].items():
            assert g["removed"][bn_name] == [offset + i for i in chosen[g["group"]]]
    with torch.no_grad():
        out = model(x)[0]
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)


def test_global_bn_ranking_removes_zeroed_channels_wherever_they_are(yolo26n):
    """Sparsity training switches channels off unevenly (most in a few groups, none in others): global ranking must
    remove exactly those, where the same ratio per group would remove live channels too."""
    model = yolo26n.eval()
    _randomise_gammas(model)
    ratio = 0.2
    probe = ChannelPruner(copy.deepcopy(model), ratio, "bn", round_to=1, prune_head=True).prune()  # groups, their BNs
    budget = sum(g["before"] - math.ceil(g["before"] * (1 - ratio) - 1e-9) for g in probe.groups)  # as ranked globally
    modules = dict(model.named_modules())
    chosen, left = {}, budget
    for g in (g for g in probe.groups if g["norms"] and "]" not in g["group"]):  # whole groups with BatchNorm
        n = min(left, g["before"] - math.ceil(0.2 * g["before"]))
        chosen[g["group"]], left = list(range(n)), left - n
        for bn_name, offset in g["norms"].items():
            modules[bn_name].weight.data[offset: offset + n] = 0
            modules[bn_name].bias.data[offset: offset + n] = 0
        if not left:
            break
    assert not left and sum(1 for idxs in chosen.values() if idxs) < len(probe.groups) / 2  # uneven by construction
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        ref = model(x)[0]
    plan = ChannelPruner(model, ratio, "bn", round_to=1, global_pruning=True, prune_head=True).prune()
    for g in plan.groups:
        for bn_name, offset in g["norms"].items():
            assert g["removed"][bn_name] == [offset + i for i in chosen.get(g["group"], [])], g["group"]
    with torch.no_grad():
        out = model(x)[0]
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)


def _write_config(path, mult):
    path.write_text(yaml.safe_dump({"multipliers": mult}))
    return path


def test_shortcut_multipliers_set_group_ratios(tmp_path, yolo26n):
    mult = {"residual": 0.2, "fusion": 0.4, "csp": 0.6, "attention": 0.8, "regular": 1.0}
    cfg = _write_config(tmp_path / "s.yaml", mult)
    plan = ChannelPruner(yolo26n, 0.5, "l1", preserve_shortcuts=True, config_file=cfg, round_to=1,
                         prune_head=True).prune()
    kinds = {g["type"] for g in plan.groups}
    assert kinds == set(SHORTCUT_TYPES)
    for g in plan.groups:
        assert g["ratio"] == pytest.approx(0.5 * mult[g["type"]])
        keep = math.ceil(g["before"] * (1 - g["ratio"]) - 1e-9)
        assert g["after"] >= keep  # C2f halves may keep the larger of their two widths
    whole = [g for g in plan.groups if "]" not in g["group"]]
    assert any(g["after"] == math.ceil(g["before"] * (1 - g["ratio"]) - 1e-9) for g in whole)


def test_uniform_ratio_without_shortcut_preservation(yolo26n):
    plan = ChannelPruner(yolo26n, 0.5, "random", preserve_shortcuts=False).prune()
    head = {g["ratio"] for g in plan.groups if g["group"].startswith("model.23.")}
    assert head == {0.0} and {g["ratio"] for g in plan.groups if not g["group"].startswith("model.23.")} == {0.5}


def test_round_to_rounds_kept_channels(yolo26n):
    plan = ChannelPruner(yolo26n, 0.3, "l1", round_to=8).prune()
    assert all(g["after"] % 8 == 0 or g["after"] == g["before"] for g in plan.groups)


def test_global_pruning_keeps_budget_and_varies_ratios(yolo26n):
    local = ChannelPruner(copy.deepcopy(yolo26n), 0.4, "l1", round_to=1).prune()
    plan = ChannelPruner(yolo26n, 0.4, "l1", round_to=1, global_pruning=True).prune()
    removed = sum(g["before"] - g["after"] for g in plan.groups)
    assert removed == pytest.approx(sum(g["before"] - g["after"] for g in local.groups), rel=0.1)
    assert len({g["ratio"] for g in plan.groups}) > 3


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"pruning_ratio": 1.0}, "pruning_ratio=1.0"),
        ({"pruning_ratio": 0.3, "importance_metric": "foo"}, "importance_metric='foo'"),
        ({"pruning_ratio": 0.3, "round_to": 0}, "round_to=0"),
        ({"pruning_ratio": 0.3, "importance_metric": "taylor"}, "data="),
        ({"pruning_ratio": 0.3, "config_file": "nope"}, "shortcut_config=nope"),
    ],
)
def test_bad_arguments_are_refused(yolo26n, kwargs, match):
    with pytest.raises(ValueError, match=match):
        ChannelPruner(yolo26n, **kwargs)


def test_ratio_that_would_empty_a_layer_is_refused(tmp_path, yolo26n):
    cfg = _write_config(tmp_path / "s.yaml", dict.fromkeys(SHORTCUT_TYPES, 2.0))
    before = n_params(yolo26n)
    with pytest.raises(ValueError, match="would remove all"):
        ChannelPruner(yolo26n, 0.6, "l1", preserve_shortcuts=True, config_file=cfg).prune()
    assert n_params(yolo26n) == before
    assert type(yolo26n.model[2]).__name__ == "C3k2"  # restored to stock after the refusal


@pytest.mark.slow
@pytest.mark.parametrize("cfg", ["yolov8n.yaml", "yolo26n.yaml"])
def test_detect_head_keeps_its_inner_widths_unless_prune_head(cfg, build):
    def head_widths(model):  # depthwise convolutions have their input's (a neck output's) width
        return {n: m.out_channels for n, m in model.model[-1].named_modules()
                if isinstance(m, nn.Conv2d) and m.groups == 1}

    whole, pruned = build(cfg), build(cfg)
    before = head_widths(whole)
    prune_model(whole, 0.5, "l2")
    assert head_widths(whole) == before
    assert get_flops(whole, 64) < 0.8 * get_flops(build(cfg), 64)
    prune_model(pruned, 0.5, "l2", prune_head=True)
    narrower = [n for n, w in head_widths(pruned).items() if w < before[n]]
    assert narrower and all(before[n] > head_widths(pruned)[n] for n in narrower)
    assert get_flops(pruned, 64) < get_flops(whole, 64)
    for model in (whole, pruned):
        model.eval()(torch.zeros(1, 3, 64, 64))  # still a working detector


def _neck_outputs(model) -> dict[str, int]:
    """Widths of the convolutions feeding the Detect head (YOLO26n's layers 16, 19, 22)."""
    return {f"{i}": model.model[i].cv2.conv.out_channels for i in (16, 19, 22)}


def test_head_keeps_its_widths_but_not_its_inputs_and_head_ratio_prunes_it(build):
    """The neck outputs the head's depthwise class convolutions share channels with are pruned like any layer while
    the head keeps its own widths; head_ratio=0.25 prunes the head by its own ratio, also under global ranking."""
    kept, quarter, ranked = build("yolo26n.yaml"), build("yolo26n.yaml"), build("yolo26n.yaml")
    necks = _neck_outputs(kept)
    inner = kept.model[-1].cv3[0][1][1].conv.out_channels  # 80 with 80 classes
    prune_model(kept, 0.5, "l2")
    prune_model(quarter, 0.5, "l2", head_ratio=0.25)
    prune_model(ranked, 0.5, "l2", head_ratio=0.25, global_pruning=True)
    assert _neck_outputs(kept) == {k: v // 2 for k, v in necks.items()} == _neck_outputs(quarter)
    assert kept.model[-1].cv3[0][1][1].conv.out_channels == inner
    for model in (quarter, ranked):  # 80 * 0.75 = 60, up to a multiple of 16
        assert model.model[-1].cv3[0][1][1].conv.out_channels == 64
    assert get_flops(quarter, 64) < get_flops(kept, 64)
    quarter.eval()(torch.zeros(1, 3, 64, 64))


def test_bad_head_ratio_is_refused(build):
    with pytest.raises(ValueError, match="head_ratio=1.0 is invalid"):
        ChannelPruner(build("yolo26n.yaml"), 0.5, head_ratio=1.0)
