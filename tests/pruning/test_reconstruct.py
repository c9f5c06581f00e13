"""Refitting the convolutions that lost input channels: the pruned model's outputs move back towards the original's."""

import pytest
import torch
from torch import nn

from yolo_compress.pruning import ChannelPruner, adapters
from yolo_compress.pruning.recalibrate import train_batches
from yolo_compress.pruning.reconstruct import kept_outputs, match_batchnorm, reconstruct, refittable


def head_inputs(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """The feature maps the Detect head reads."""
    seen = []
    handle = model.model[-1].register_forward_hook(lambda m, inputs, out: seen.append([t.clone() for t in inputs[0]]))
    with torch.no_grad():
        model.eval()(x)
    handle.remove()
    return seen[0]


def branch_outputs(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """The Detect head's raw box and class maps: their widths are fixed, so pruned and original compare."""
    head, seen = model.model[-1], []
    handles = [branch.register_forward_hook(lambda m, inputs, out: seen.append(out.clone()))
               for branch in (*head.cv2, *head.cv3)]
    with torch.no_grad():
        model.eval()(x)
    for h in handles:
        h.remove()
    return seen


def relative_error(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return float(sum((p - q).norm() for p, q in zip(a, b)) / sum(q.norm() for q in b))


def test_kept_outputs_are_the_channels_the_pruner_kept(yolo26n):
    original = adapters.clean_copy(yolo26n)
    plan = ChannelPruner(yolo26n, 0.5, "l2").prune()
    pruned, source = dict(yolo26n.named_modules()), dict(original.named_modules())
    convs = [n for n, m in yolo26n.named_modules() if isinstance(m, nn.Conv2d)]
    kept = kept_outputs(plan.groups, convs, {n: source[n].out_channels for n in convs})
    untouched_inputs = [n for n in convs if pruned[n].in_channels == source[n].in_channels and pruned[n].groups == 1]
    assert any(len(kept[n]) < source[n].out_channels for n in untouched_inputs)
    for n in untouched_inputs:  # weights of a conv that lost outputs only are the original's kept rows
        assert torch.equal(pruned[n].weight, source[n].weight[kept[n]]), n


@pytest.mark.slow  # about 20 s: a least-squares fit per pruned layer
def test_refit_brings_the_head_outputs_back_towards_the_unpruned_model(yolo26n, synth_data):
    batches = train_batches(yolo26n, str(synth_data), 64, 4, n_batches=4)
    held_out = batches[-1]["img"].float() / 255
    original = adapters.clean_copy(yolo26n)
    plan = ChannelPruner(yolo26n, 0.5, "l2").prune()
    plain = adapters.clean_copy(yolo26n)
    refitted = reconstruct(yolo26n, original, plan.groups, batches[:-1])
    modules, sources = dict(yolo26n.named_modules()), dict(original.named_modules())
    assert refitted == sum(refittable(m, sources[n]) for n, m in modules.items() if isinstance(m, nn.Conv2d)) > 0
    target = branch_outputs(original, held_out)
    before, after = (relative_error(branch_outputs(m, held_out), target) for m in (plain, yolo26n))
    assert after < 0.5 * before, (after, before)  # on images the refit did not see


def batch_statistics_output(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Head inputs of a copy whose BatchNorms normalise with the batch's own statistics, as in training."""
    copy = adapters.clean_copy(model).eval()
    for m in copy.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.train()
    seen = []
    copy.model[-1].register_forward_hook(lambda m, inputs, out: seen.append([t.clone() for t in inputs[0]]))
    with torch.no_grad():
        copy(x)
    return seen[0]


def test_batchnorm_matching_keeps_the_function_and_lets_training_start_where_it_is(yolo26n):
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 64, 64, generator=gen)
    for m in yolo26n.modules():  # statistics that do not match what the layers receive, as after a refit
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean += torch.randn(m.num_features, generator=gen) * 0.5
            m.running_var *= 0.5 + torch.rand(m.num_features, generator=gen)
    before = head_inputs(yolo26n, x)
    stale = relative_error(batch_statistics_output(yolo26n, x), before)
    match_batchnorm(yolo26n, [x])
    assert relative_error(head_inputs(yolo26n, x), before) < 1e-4  # eval-mode function unchanged
    matched = relative_error(batch_statistics_output(yolo26n, x), before)
    assert matched < 0.1 * stale, (matched, stale)  # training's batch statistics now give the same outputs


def test_pruning_batches_are_the_same_images_in_every_process(yolo26n, synth_data):
    first = train_batches(yolo26n, str(synth_data), 64, 4, n_batches=2)
    torch.manual_seed(12345)  # whatever the process's own seed
    second = train_batches(yolo26n, str(synth_data), 64, 4, n_batches=2)
    assert [b["im_file"] for b in first] == [b["im_file"] for b in second]
