import csv
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from conftest import TRAIN_KW
from yolo_compress import YOLO, trainer
from yolo_compress.trainer import CompressionTrainer, Technique


def _files(run: Path) -> set[str]:
    return {p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file()}


@pytest.mark.slow
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


@pytest.mark.slow
def test_hooks_loss_terms_and_columns(synth_data, tmp_path, monkeypatch):
    trainer.load_plugins()  # registered before the list is replaced, so that only the probe runs
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
    for bad in ("pruning_ratio=1.5", "importance_metric=foo", "lambda_l1=-1", "prunning=True", "ema_tau=0"):
        code, _, err = cli("train", "model=yolo26n.yaml", f"data={synth_data}", "epochs=1", "imgsz=64",
                           f"project={tmp_path}", "name=bad", bad)
        assert code == 2, err
        assert len(err.strip().splitlines()) == 1 and bad.split("=")[0] in err
    assert not any(tmp_path.iterdir())


def test_trainer_strips_compression_args_before_ultralytics(synth_data, tmp_path):
    t = CompressionTrainer(overrides={"model": "yolo26n.yaml", "data": str(synth_data), "pruning_ratio": 0.5,
                                      "project": str(tmp_path), "name": "t", **TRAIN_KW})
    assert t.compression.pruning_ratio == 0.5 and t.args.pruning_ratio == 0.5
    assert t.compression.importance_metric == "l2"  # the spec default


@pytest.mark.slow
@pytest.mark.parametrize("tau", [2000, 3])
def test_ema_tau_sets_the_ema_warm_up(synth_data, tmp_path, tau):
    """The EMA that is validated and saved averages after about ema_tau optimizer steps (Ultralytics: 2000)."""
    seen = {}
    model = YOLO("yolo26n.yaml")
    model.add_callback("on_train_end", lambda tr: seen.update(d=tr.ema.decay(3), updates=tr.ema.updates))
    model.train(data=str(synth_data), project=str(tmp_path), name=f"ema{tau}", ema_tau=tau, **TRAIN_KW)
    assert seen["updates"] >= 1
    assert seen["d"] == pytest.approx(0.9999 * (1 - math.exp(-3 / tau)))


@pytest.mark.slow
def test_cpu_training_uses_every_core(synth_data, tmp_path, monkeypatch):
    """Ultralytics leaves one core for data-loading workers that it then disables on CPU; the trainer takes it back."""
    monkeypatch.delenv("YOLO_COMPRESS_THREADS", raising=False)  # set per worker when the suite runs on xdist
    tr = CompressionTrainer(overrides={"model": "yolo26n.yaml", "data": str(synth_data), "device": "cpu",
                                       "project": str(tmp_path), **TRAIN_KW})
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        tr._use_all_cores()
        assert torch.get_num_threads() == min(8, os.cpu_count() or 1)
    finally:
        torch.set_num_threads(before)


def _three_class_data(synth_data: Path, tmp_path: Path) -> Path:
    """The synthetic set relabelled to 3 classes (shapes 3 and 4 become 0 and 1), as a user's new dataset."""
    import shutil

    root = tmp_path / "d3"
    shutil.copytree(synth_data.parent / "images", root / "images")
    for split in ("train", "val"):
        (root / "labels" / split).mkdir(parents=True)
        for f in (synth_data.parent / "labels" / split).glob("*.txt"):
            lines = [f"{int(c) % 3} {rest}" for c, rest in (line.split(" ", 1) for line in f.read_text().splitlines())]
            (root / "labels" / split / f.name).write_text("\n".join(lines) + "\n")
    data = root / "data.yaml"
    data.write_text(yaml.safe_dump({"path": str(root), "train": "images/train", "val": "images/val",
                                    "names": {0: "circle", 1: "square", 2: "triangle"}}))
    return data


def _params(path: Path) -> int:
    from yolo_compress.checkpoints import load

    return sum(p.numel() for p in load(path)[0].parameters())


def test_transfer_learning_to_other_classes_unpruned_and_pruned(trained_pt, synth_data, tmp_path, cli):
    from yolo_compress.commands.prune import run as prune_command

    data = _three_class_data(synth_data, tmp_path)
    kw = [f"{k}={v}" for k, v in TRAIN_KW.items()]
    code, _, err = cli("train", f"model={trained_pt}", f"data={data}", f"project={tmp_path}", "name=stock", *kw)
    assert code == 0, err
    model = torch.load(tmp_path / "stock" / "weights" / "best.pt", weights_only=False)["model"]
    assert model.nc == 3 and _params(tmp_path / "stock" / "weights" / "best.pt") < _params(trained_pt)

    pruned = prune_command({"model": str(trained_pt), "pruning_ratio": 0.3, "imgsz": 64, "project": str(tmp_path),
                            "name": "p"})
    code, _, err = cli("train", f"model={pruned}", f"data={data}", f"project={tmp_path}", "name=ft", *kw)
    assert code == 0, err
    tuned = tmp_path / "ft" / "weights" / "best.pt"
    head = torch.load(pruned, weights_only=False)["model"].model[-1]
    class_outputs = sum(b[-1].in_channels + 1 for levels in (head.cv3, head.one2one_cv3) for b in levels)
    assert _params(tuned) == _params(pruned) - 2 * class_outputs  # 5 -> 3 classes, pruned widths kept
    check = ("from ultralytics import YOLO; import sys; m = YOLO(sys.argv[1]); "
             "assert m.model.nc == 3 and len(m.names) == 3; print(m.predict(sys.argv[2], "
             "imgsz=64, verbose=False)[0].boxes is not None)")
    image = next((synth_data.parent / "images" / "val").iterdir())
    r = subprocess.run([sys.executable, "-c", check, str(tuned), str(image)], capture_output=True, text=True,
                       env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, cwd=tmp_path)
    assert r.returncode == 0 and "True" in r.stdout, r.stderr[-2000:]


def test_train_refuses_bad_data_size_and_its_own_input_folder(trained_pt, synth_data, tmp_path, cli):
    import hashlib
    import shutil

    broken = tmp_path / "broken.yaml"
    broken.write_text("train: [unclosed\n")
    for data, words in ((tmp_path / "missing.yaml", "'data="), (broken, "'data=")):
        code, _, err = cli("train", "model=yolo26n.yaml", f"data={data}", "epochs=1", f"project={tmp_path}")
        assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err[-1500:]
    labels = _three_class_data(synth_data, tmp_path / "bad")  # then every label made out of range:
    for f in (labels.parent / "labels").rglob("*.txt"):
        f.write_text("".join(f"9 {line.split(' ', 1)[1]}\n" for line in f.read_text().splitlines()))
    code, _, err = cli("train", "model=yolo26n.yaml", f"data={labels}", "epochs=1", "imgsz=64", "workers=0",
                       f"project={tmp_path / 'runs'}")
    assert code == 2 and "has no usable training images: every label was refused" in err, err[-1500:]
    shutil.rmtree(tmp_path / "bad")
    shutil.rmtree(tmp_path / "runs", ignore_errors=True)  # Ultralytics made the run folder before reading labels
    code, _, err = cli("train", "model=yolo26n.yaml", f"data={synth_data}", "imgsz=0", f"project={tmp_path}")
    assert code == 2 and "'imgsz=0' is invalid" in err
    digest = hashlib.sha256(trained_pt.read_bytes()).hexdigest()
    run = trained_pt.parent.parent
    code, _, err = cli("train", f"model={trained_pt}", f"data={synth_data}", "epochs=1", "imgsz=64",
                       f"project={run.parent}", f"name={run.name}", "exist_ok=True")
    assert code == 2 and "lies inside this run's folder" in err
    assert hashlib.sha256(trained_pt.read_bytes()).hexdigest() == digest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.yaml"]  # no run folder left behind
