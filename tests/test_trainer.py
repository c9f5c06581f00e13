import csv
import os
from pathlib import Path

import torch
import yaml

from conftest import TRAIN_KW
from yolo_compress import YOLO, trainer
from yolo_compress.trainer import CompressionTrainer, Technique


def _files(run: Path) -> set[str]:
    return {p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file()}


def test_plain_run_matches_stock_yolo_train(synth_data, tmp_path):
    from ultralytics import YOLO as StockYOLO

    StockYOLO("yolo26n.yaml").train(data=str(synth_data), project=str(tmp_path), name="stock", **TRAIN_KW)
    YOLO("yolo26n.yaml").train(data=str(synth_data), project=str(tmp_path), name="ours", **TRAIN_KW)
    stock, ours = tmp_path / "stock", tmp_path / "ours"
    assert _files(stock) == _files(ours)
    a, b = (yaml.safe_load((d / "args.yaml").read_text()) for d in (stock, ours))
    for k in ("name", "save_dir"):
        a.pop(k), b.pop(k)
    assert a == b
    with open(stock / "results.csv") as f, open(ours / "results.csv") as g:
        assert next(csv.reader(f)) == next(csv.reader(g))


class _Probe(Technique):
    """Adds a known loss term and a results.csv column; counts hook calls."""

    calls: dict = {}

    @classmethod
    def enabled(cls, args):
        return args.l1_regularization

    def on_model_ready(self):
        self.calls["ready"] = self.calls.get("ready", 0) + 1

    def loss(self, batch, preds):
        return {"probe": torch.ones((), device=batch["img"].device)}

    def before_optimizer_step(self, grad_scale):
        self.calls["step"] = self.calls.get("step", 0) + 1

    def metrics(self):
        return {"probe/metric": 0.5}


def test_hooks_loss_terms_and_columns(synth_data, tmp_path, monkeypatch):
    monkeypatch.setattr(trainer, "TECHNIQUES", [_Probe])
    model = YOLO("yolo26n.yaml")
    model.train(data=str(synth_data), project=str(tmp_path), name="probe", l1_regularization=True, **TRAIN_KW)
    assert _Probe.calls["ready"] == 1 and _Probe.calls["step"] >= 1
    with open(tmp_path / "probe" / "results.csv") as f:
        row = next(csv.DictReader(f))
    assert float(row["train/probe"]) == 1.0 and float(row["probe/metric"]) == 0.5
    args = yaml.safe_load((tmp_path / "probe" / "args.yaml").read_text())
    assert args["l1_regularization"] is True and args["pruning_ratio"] == 0.3


def test_bad_argument_fails_before_any_run_folder(synth_data, tmp_path, cli):
    for bad in ("pruning_ratio=1.5", "importance_metric=foo", "lambda_l1=-1", "prunning=True"):
        code, _, err = cli("train", "model=yolo26n.yaml", f"data={synth_data}", "epochs=1", "imgsz=64",
                           f"project={tmp_path}", "name=bad", bad)
        assert code == 2, err
        assert len(err.strip().splitlines()) == 1 and bad.split("=")[0] in err
    assert not any(tmp_path.iterdir())


def test_trainer_strips_compression_args_before_ultralytics(synth_data, tmp_path):
    t = CompressionTrainer(overrides={"model": "yolo26n.yaml", "data": str(synth_data), "pruning_ratio": 0.5,
                                      "project": str(tmp_path), "name": "t", **TRAIN_KW})
    assert t.compression.pruning_ratio == 0.5 and t.args.pruning_ratio == 0.5
    assert t.compression.importance_metric == "l1"


def test_cpu_training_uses_every_core(synth_data, tmp_path):
    """Ultralytics leaves one core for data-loading workers that it then disables on CPU; the trainer takes it back."""
    tr = CompressionTrainer(overrides={"model": "yolo26n.yaml", "data": str(synth_data), "device": "cpu",
                                       "project": str(tmp_path), **TRAIN_KW})
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        tr._use_all_cores()
        assert torch.get_num_threads() == min(8, os.cpu_count() or 1)
    finally:
        torch.set_num_threads(before)
