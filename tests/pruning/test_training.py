"""pruning=True in training: prune at prune_at_epoch, keep training pruned, resume without pruning twice."""

import pytest
import torch
from ultralytics.nn.tasks import load_checkpoint

from yolo_compress import YOLO
from yolo_compress.cfg import ArgumentError

pytestmark = pytest.mark.slow  # every test here trains or exports a model

KW = dict(imgsz=64, batch=8, workers=0, plots=False, seed=0, exist_ok=True, device="cpu")


def n_params(path) -> int:
    return sum(p.numel() for p in load_checkpoint(path)[0].parameters())


@pytest.fixture(scope="module")
def pruned_run(synth_data, tmp_path_factory):
    project = tmp_path_factory.mktemp("runs")
    YOLO("yolo26n.yaml").train(data=str(synth_data), project=str(project), name="p", epochs=2, pruning=True,
                               pruning_ratio=0.5, prune_at_epoch=1, **KW)
    return project / "p"


def test_prune_at_epoch_trains_on_and_saves_pruned_model(pruned_run):
    unpruned = sum(p.numel() for p in YOLO("yolo26n.yaml").model.parameters())
    best, last = pruned_run / "weights" / "best.pt", pruned_run / "weights" / "last.pt"
    assert n_params(best) < 0.6 * unpruned
    assert n_params(last) == n_params(best)
    rows = (pruned_run / "results.csv").read_text().splitlines()
    params = [float(r.split(",")[rows[0].split(",").index("pruning/params")]) for r in rows[1:]]
    assert params[0] > params[1] == n_params(best)
    assert (pruned_run / "prune_plan.txt").is_file()


def test_fine_tuning_a_pruned_checkpoint_keeps_it_pruned(pruned_run, synth_data, tmp_path):
    best = pruned_run / "weights" / "best.pt"
    YOLO(str(best)).train(data=str(synth_data), project=str(tmp_path), name="ft", epochs=1, **KW)
    assert n_params(tmp_path / "ft" / "weights" / "last.pt") == n_params(best)


@pytest.mark.parametrize(("epochs", "kill_epoch"), [(2, 1), (3, 2)])
def test_resume_after_kill_continues_pruned(synth_data, tmp_path, monkeypatch, epochs, kill_epoch):
    """Killed in the pruning epoch (last.pt unpruned) or after it (last.pt pruned): resume ends pruned, pruned once."""
    from yolo_compress.pruning import technique

    class Killed(RuntimeError):
        pass

    def kill(trainer):
        if trainer.epoch == kill_epoch:
            raise Killed

    model = YOLO("yolo26n.yaml")
    model.add_callback("on_train_batch_end", kill)
    with pytest.raises(Killed):
        model.train(data=str(synth_data), project=str(tmp_path), name="r", epochs=epochs, pruning=True,
                    pruning_ratio=0.5, prune_at_epoch=1, **KW)
    last = tmp_path / "r" / "weights" / "last.pt"
    assert torch.load(last, weights_only=False)["epoch"] == kill_epoch - 1
    prunes = []

    class CountingPruner(technique.ChannelPruner):
        def prune(self):
            prunes.append(1)
            return super().prune()

    monkeypatch.setattr(technique, "ChannelPruner", CountingPruner)
    YOLO(str(last)).train(resume=True)
    assert len(prunes) == (1 if kill_epoch == 1 else 0)
    unpruned = sum(p.numel() for p in YOLO("yolo26n.yaml").model.parameters())
    for name in ("last.pt", "best.pt"):
        assert n_params(tmp_path / "r" / "weights" / name) < 0.6 * unpruned
    assert len((tmp_path / "r" / "results.csv").read_text().splitlines()) == epochs + 1


def test_prune_epoch_beyond_the_run_is_refused(synth_data, tmp_path):
    with pytest.raises(ArgumentError, match="prune_at_epoch=3"):
        YOLO("yolo26n.yaml").train(data=str(synth_data), project=str(tmp_path), name="x", epochs=2, pruning=True,
                                   prune_at_epoch=3, **KW)


def test_taylor_importance_in_training_uses_training_batches(synth_data, tmp_path):
    YOLO("yolo26n.yaml").train(data=str(synth_data), project=str(tmp_path), name="t", epochs=2, pruning=True,
                               pruning_ratio=0.3, prune_at_epoch=1, importance_metric="taylor", **KW)
    unpruned = sum(p.numel() for p in YOLO("yolo26n.yaml").model.parameters())
    assert n_params(tmp_path / "t" / "weights" / "best.pt") < 0.8 * unpruned
