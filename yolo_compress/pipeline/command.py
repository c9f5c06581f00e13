"""`yolo-compress pipeline RECIPE [model=...] [data=...] [imgsz=...] [epochs=...] [name=...]`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ultralytics.utils import LOGGER, colorstr

from yolo_compress.pipeline import recipe as recipes
from yolo_compress.pipeline import results, runner


def run_and_compare(recipe: dict[str, Any], runs: int = 100) -> tuple[Path, list[dict[str, Any]]]:
    """Run the recipe's stages, then measure every artifact side by side and write results and report."""
    from yolo_compress.report.build import build

    run_dir = runner.run(recipe, recipe.get("project", "runs/compress"))
    stages = [("input", Path(recipe["model"]))] if str(recipe["model"]).endswith(".pt") else []
    stages += [(s["name"], runner.artifact_of(run_dir, k, s)) for k, s in enumerate(recipe["stages"], 1)]
    rows = results.measure_artifacts(stages, str(recipe["data"]), int(recipe.get("imgsz", 640)), run_dir / "onnx", runs)
    md = results.write(run_dir, rows, int(recipe.get("imgsz", 640)))
    report = build(run_dir, run_dir / "report.md")
    LOGGER.info(f"\n{results.to_markdown(rows)}\n\n{colorstr('pipeline:')} results {md}, report {report}")
    return run_dir, rows


def pipeline_command(args: dict[str, Any]) -> None:
    args = dict(args)
    name = args.pop("recipe", None)
    if not name:
        raise ValueError(f"'pipeline' needs a recipe file or name. Built-in: {', '.join(recipes.builtin_recipes())}.")
    runs = int(args.pop("runs", 100))
    run_and_compare(recipes.load(name, args), runs)
