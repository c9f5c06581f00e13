"""`yolo-compress prune`: writes a pruned stock checkpoint and its plan, never touches the input."""

import hashlib

import pytest
from ultralytics.nn.tasks import load_checkpoint

from yolo_compress.cfg import ArgumentError
from yolo_compress.cli import run
from yolo_compress.pruning.checkpoint import save_checkpoint


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def base_pt(tmp_path, yolo26n):
    return save_checkpoint(yolo26n, tmp_path / "base.pt", {"imgsz": 64})


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
    rows = (out / "plan_layers.csv").read_text().splitlines()
    assert rows[0] == "layer,type,before,after"
    assert any(r.startswith("model.23.cv2.0.2,fixed,4,4") for r in rows)  # box output conv kept whole


def test_prune_command_taylor_uses_data(tmp_path, base_pt, synth_data):
    run(["prune", f"model={base_pt}", "pruning_ratio=0.3", "importance_metric=taylor", f"data={synth_data}",
         "imgsz=64", "batch=4", f"project={tmp_path / 'runs'}", "name=t"])
    assert (tmp_path / "runs" / "t" / "weights" / "pruned.pt").is_file()


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
