"""`yolo-compress prune`: writes a pruned stock checkpoint and its plan, never touches the input."""

import copy
import hashlib

import pytest
import torch
from torch import nn
from ultralytics.nn.tasks import load_checkpoint

from yolo_compress.cfg import ArgumentError
from yolo_compress.cli import run
from yolo_compress.pruning import ChannelPruner
from yolo_compress.pruning.checkpoint import save_checkpoint
from yolo_compress.pruning.recalibrate import recalibrate_bn, train_batches


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def base_pt(tmp_path, yolo26n):
    return save_checkpoint(yolo26n, tmp_path / "base.pt", {"imgsz": 64})


@pytest.mark.slow
def test_prune_command_writes_checkpoint_and_plan(tmp_path, base_pt):
    before = digest(base_pt)
    run(["prune", f"model={base_pt}", "pruning_ratio=0.5", "imgsz=64", "global=True",
         f"project={tmp_path / 'runs'}", "name=p"])
    out = tmp_path / "runs" / "p"
    assert digest(base_pt) == before
    assert {f.name for f in out.iterdir()} >= {"weights", "plan_layers.csv", "plan_groups.csv", "plan.png"}
    pruned, ckpt = load_checkpoint(out / "weights" / "pruned.pt")
    original, _ = load_checkpoint(base_pt)
    assert sum(p.numel() for p in pruned.parameters()) < 0.6 * sum(p.numel() for p in original.parameters())
    assert ckpt["yolo_compress"]["pruning"]["global_pruning"] is True
    assert 0 < ckpt["yolo_compress"]["pruning"]["seconds"] < 60  # the pruning step alone, as the log reports it
    rows = (out / "plan_layers.csv").read_text().splitlines()
    assert rows[0] == "layer,type,before,after"
    assert any(r.startswith("model.23.cv2.0.2,fixed,4,4") for r in rows)  # box output conv kept whole


@pytest.mark.slow
@pytest.mark.parametrize("target", [0.5, 0.7])
def test_channel_pruning_to_a_flops_target_finds_its_ratio(tmp_path, base_pt, target):
    from yolo_compress import measure

    run(["prune", f"model={base_pt}", f"target_flops={target}", "imgsz=64", f"project={tmp_path}", "name=f"])
    pt = tmp_path / "f" / "weights" / "pruned.pt"
    kept = measure.gflops(measure.load_model(pt), 64) / measure.gflops(measure.load_model(base_pt), 64)
    ratio = load_checkpoint(pt)[1]["yolo_compress"]["pruning"]["pruning_ratio"]
    assert abs(kept - target) < 0.08 and 0 < ratio < 0.95  # close to the target (widths move in round_to steps)


@pytest.mark.slow
def test_prune_command_taylor_uses_data(tmp_path, trained_pt, synth_data):
    # A trained checkpoint as users have it: Ultralytics' loader freezes its parameters, Taylor needs their gradients.
    run(["prune", f"model={trained_pt}", "pruning_ratio=0.3", "importance_metric=taylor", f"data={synth_data}",
         "imgsz=64", "batch=4", f"project={tmp_path / 'runs'}", "name=t"])
    _, ckpt = load_checkpoint(tmp_path / "runs" / "t" / "weights" / "pruned.pt")
    assert ckpt["yolo_compress"]["pruning"]["reconstruct"] is True  # with data=, the default refits the pruned layers


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["pruning_ratio=1.0"], "pruning_ratio=1.0"),
        (["importance_metric=taylor"], "data="),
        (["round_to=0"], "round_to=0"),
        (["globl=True"], "globl"),
    ],
)
def test_prune_command_refuses_bad_arguments(tmp_path, base_pt, extra, match):
    with pytest.raises(ArgumentError, match=match):
        run(["prune", f"model={base_pt}", f"project={tmp_path / 'runs'}", *extra])
    assert not (tmp_path / "runs").exists()


def test_prune_command_needs_a_checkpoint(tmp_path):
    with pytest.raises(ArgumentError, match="model"):
        run(["prune", "pruning_ratio=0.3"])
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        run(["prune", f"model={tmp_path / 'missing.pt'}"])


def test_pruned_model_gets_batchnorm_statistics_of_its_new_inputs(yolo26n, synth_data):
    """Channels with gamma 0 but beta > 0 send a constant SiLU(beta) that the next BatchNorm's running mean counts;
    after they are removed, only re-estimated statistics give back the unpruned model's eval-mode outputs."""
    model = yolo26n.eval()
    probe = ChannelPruner(copy.deepcopy(model), 0.3, "bn").prune()
    modules, gen = dict(model.named_modules()), torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data = 0.5 + torch.rand(m.num_features, generator=gen)
            m.bias.data = 0.5 + torch.rand(m.num_features, generator=gen)
    for g in probe.groups:  # gamma 0, beta kept, for the channels bn importance will remove
        idxs = torch.randperm(g["before"], generator=gen)[: g["before"] - g["after"]].tolist()
        for bn_name, offset in g["norms"].items():
            modules[bn_name].weight.data[[offset + i for i in idxs]] = 0
    batches = train_batches(model, str(synth_data), 64, 4, n_batches=4)
    recalibrate_bn(model, batches)
    x = batches[0]["img"].float() / 255
    with torch.no_grad():
        ref = model(x)[0]
    ChannelPruner(model, 0.3, "bn").prune()
    with torch.no_grad():
        stale = model(x)[0]
        recalibrate_bn(model, batches)
        fresh = model(x)[0]
    err_stale, err_fresh = ((out - ref).abs().mean() / ref.abs().mean() for out in (stale, fresh))
    assert err_fresh < 0.5 * err_stale, (err_fresh, err_stale)  # measured 0.055 vs 0.135; zero padding keeps it inexact
