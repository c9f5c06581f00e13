"""Run a recipe and compare its artifacts: what `yolo-compress pipeline` and `demo` do after checking arguments."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ultralytics.utils import LOGGER, colorstr

from yolo_compress.pipeline import results, runner


def run_and_compare(recipe: dict[str, Any], runs: int, max_map_drop: float = results.INT8_MAX_MAP_DROP,
                    ) -> tuple[Path, list[dict[str, Any]]]:
    """Run the recipe's stages, then measure every artifact side by side and write results and report. The run ends
    with the artifact to deploy: an INT8 last stage that is not fast enough to pay its way or loses more than
    `max_map_drop` yields to the checkpoint it came from (results.final_choice)."""
    from yolo_compress.report.build import build

    from ultralytics.cfg import DEFAULT_CFG

    run_dir = runner.run(recipe, recipe["project"])
    imgsz = int(recipe.get("imgsz") or DEFAULT_CFG.imgsz)  # a recipe without imgsz trains at Ultralytics' default
    stages = [("input", Path(recipe["model"]))] if str(recipe["model"]).endswith(".pt") else []
    stages += [(s["name"], runner.artifact_of(run_dir, k, s)) for k, s in enumerate(recipe["stages"], 1)]
    rows = results.measure_artifacts(stages, str(recipe["data"]), imgsz, run_dir / "onnx", runs)
    final = results.final_choice(rows, max_map_drop)
    md = results.write(run_dir, rows, imgsz, final)
    report = build(run_dir, run_dir / "report.md")
    LOGGER.info(f"\n{results.to_markdown(rows)}\n\n{colorstr('pipeline:')} results {md}, report {report}")
    if final:
        LOGGER.info(f"{colorstr('pipeline:')} deploy {final['artifact']} ({final['why']})")
    return run_dir, rows
