import json
import subprocess
import sys

import pytest
import yaml

from yolo_compress.cli import parse, run


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "yolo_compress.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd)


def test_parse_converts_values_like_ultralytics():
    assert parse(["a=1", "b=0.5", "c=True", "d=none", "e=x.pt", "m.pt"], "model") == {
        "a": 1, "b": 0.5, "c": True, "d": None, "e": "x.pt", "model": "m.pt"}
    assert parse(["a.pt", "b.pt"], "models") == {"models": ["a.pt", "b.pt"]}
    with pytest.raises(ValueError, match="no value"):
        parse(["epochs="], None)
    with pytest.raises(ValueError, match="not a key=value"):
        parse(["stray"], None)


def test_help_lists_every_seed_argument(capsys):
    run(["help"])
    out = capsys.readouterr().out
    for name in ("l1_regularization", "pruning_ratio", "importance_metric", "distill_type"):
        assert name in out


def test_unknown_subcommand_is_one_line():
    r = _cli("prunee", "model=x.pt")
    assert r.returncode == 2 and "'prunee' is not a yolo-compress sub-command" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_cfg_yaml_runs_a_training(synth_data, tmp_path, cli):
    cfg = tmp_path / "recipe.yaml"
    cfg.write_text(yaml.safe_dump({
        "task": "detect", "mode": "train", "model": "yolo26n.yaml", "data": str(synth_data), "epochs": 1,
        "imgsz": 64, "batch": 8, "plots": False, "project": str(tmp_path), "name": "fromcfg",
        "l1_regularization": False, "pruning_ratio": 0.3,
    }))
    code, _, err = cli(f"cfg={cfg}")
    assert code == 0, err[-2000:]
    assert (tmp_path / "fromcfg" / "weights" / "best.pt").exists()
    assert yaml.safe_load((tmp_path / "fromcfg" / "args.yaml").read_text())["pruning_ratio"] == 0.3


def test_analyze_and_data_commands(trained_pt, trained_onnx, tmp_path, cli):
    for model in (trained_pt, trained_onnx):
        code, out, err = cli("analyze", model, "imgsz=64", f"json={tmp_path / 'a.json'}")
        assert code == 0, err[-2000:]
        assert "weight sparsity" in out and json.loads((tmp_path / "a.json").read_text())["params"] > 0
    code, _, _ = cli("data", "synth", f"out={tmp_path / 'd'}", "n_train=2", "n_val=1", "imgsz=64")
    assert code == 0 and (tmp_path / "d" / "data.yaml").exists()
    code, _, err = cli("data", "synth", "n_train=0")
    assert code == 2 and "'n_train=0' is invalid" in err


def test_help_imports_no_torch_ultralytics_or_torch_pruning():
    code = ("import sys; from yolo_compress.cli import run; run(['help']); "
            "print(sorted(m for m in ('torch', 'ultralytics', 'torch_pruning') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip().splitlines()[-1] == "[]", r.stderr[-2000:]


@pytest.mark.slow
def test_technique_modules_import_on_their_own():
    """No import cycle hides behind the package's import order: each module that imports the engine is importable
    first, alone (every module was checked this way when the technique registry replaced the trainer's imports)."""
    from yolo_compress.trainer import PLUGINS

    code = "import importlib, sys; importlib.import_module(sys.argv[1])"
    failed = [n for n in (*PLUGINS, "yolo_compress.commands.prune")
              if subprocess.run([sys.executable, "-c", code, n], capture_output=True).returncode]
    assert not failed
