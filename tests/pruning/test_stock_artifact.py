"""A pruned checkpoint must work in a process where yolo_compress cannot be imported."""

import subprocess
import sys
import textwrap

import pytest

from yolo_compress.pruning import prune_model
from yolo_compress.pruning.checkpoint import save_checkpoint

from .conftest import build_model

pytestmark = pytest.mark.slow  # every test here trains or exports a model

MODELS = ("yolov8n.yaml", "yolo11n.yaml", "yolo12n.yaml", "yolo26n.yaml")

STOCK_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.modules["yolo_compress"] = None  # any pickled reference to yolo_compress would now fail to import
    from ultralytics import YOLO
    from ultralytics.utils import ASSETS
    for path in sys.argv[1:]:
        model = YOLO(path)
        result = model.predict(ASSETS / "bus.jpg", imgsz=96, verbose=False)[0]
        onnx = model.export(format="onnx", imgsz=96, verbose=False)
        print("PARAMS", sum(p.numel() for p in model.model.parameters()), "ONNX", onnx, flush=True)
    """
)


def run_stock(paths, cwd) -> list[str]:
    """Load, predict and export each checkpoint in one fresh process that cannot import yolo_compress; its stdout."""
    script = cwd / "stock.py"
    script.write_text(STOCK_SCRIPT)
    env = {"YOLO_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HOME": str(cwd)}
    run = subprocess.run([sys.executable, str(script), *map(str, paths)], cwd=cwd, env=env, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return [line for line in run.stdout.splitlines() if line.startswith("PARAMS ")]


@pytest.fixture(scope="module")
def stock_runs(tmp_path_factory):
    """Each model pruned at 0.5, then all checked in one stock process: {cfg: (plan, PARAMS line, folder)}."""
    plans, paths = {}, []
    for cfg in MODELS:
        folder = tmp_path_factory.mktemp(cfg.split(".")[0])
        model = build_model(cfg)
        plans[cfg] = prune_model(model, 0.5, "l1", round_to=8), folder
        paths.append(save_checkpoint(model, folder / "pruned.pt", extra={"pruning": plans[cfg][0].groups}))
    lines = run_stock(paths, tmp_path_factory.mktemp("stock"))
    return {cfg: (plan, line, folder) for (cfg, (plan, folder)), line in zip(plans.items(), lines)}


@pytest.mark.parametrize("cfg", MODELS)
def test_stock_yolo_loads_predicts_and_exports(stock_runs, cfg):
    assert cfg in stock_runs, "the stock process stopped before this model"
    plan, line, folder = stock_runs[cfg]
    assert int(line.split("PARAMS ")[1].split()[0]) == plan.params_after
    assert (folder / "pruned.onnx").stat().st_size > 0
