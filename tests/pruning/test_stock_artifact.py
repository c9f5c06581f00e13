"""A pruned checkpoint must work in a process where yolo_compress cannot be imported."""

import subprocess
import sys
import textwrap

import pytest

from yolo_compress.pruning import prune_model
from yolo_compress.pruning.checkpoint import save_checkpoint

MODELS = ("yolov8n.yaml", "yolo11n.yaml", "yolo12n.yaml", "yolo26n.yaml")

STOCK_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.modules["yolo_compress"] = None  # any pickled reference to yolo_compress would now fail to import
    from ultralytics import YOLO
    from ultralytics.utils import ASSETS
    model = YOLO(sys.argv[1])
    result = model.predict(ASSETS / "bus.jpg", imgsz=96, verbose=False)[0]
    onnx = model.export(format="onnx", imgsz=96, verbose=False)
    print("PARAMS", sum(p.numel() for p in model.model.parameters()), "ONNX", onnx)
    """
)


@pytest.mark.parametrize("cfg", MODELS)
def test_stock_yolo_loads_predicts_and_exports(tmp_path, cfg, build):
    model = build(cfg)
    plan = prune_model(model, 0.5, "l1", round_to=8)
    path = save_checkpoint(model, tmp_path / "pruned.pt", extra={"pruning": plan.groups})
    script = tmp_path / "stock.py"
    script.write_text(STOCK_SCRIPT)
    env = {"YOLO_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    run = subprocess.run([sys.executable, str(script), str(path)], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    params = int(run.stdout.split("PARAMS ")[1].split()[0])
    assert params == plan.params_after
    assert (tmp_path / "pruned.onnx").stat().st_size > 0
