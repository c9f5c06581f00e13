"""Bad and hostile inputs, tried as a careless user and a security reviewer would; writes docs/reliability.md.

Every case runs one `yolo-compress` command line (in this process, through the console entry point) from inside its
own run folder W/runs/<case>, with `project=` pointing there too. A case passes when
  - the command ends as expected: refused with exactly one `yolo-compress: error:` line (exit 2), or accepted (0);
    an uncaught exception (a traceback) always fails;
  - no file outside its run folder was created, changed or removed (dataset label caches, `*.cache`, are
    Ultralytics' own and are ignored);
  - every input (models, data, recipes under W/inputs) has the same SHA-256 before and after;
  - no hostile checkpoint ran its payload (it would create W/PWNED).

Usage: python benchmarks/bad_inputs.py [out=runs/bad_inputs] [doc=docs/reliability.md]
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("YOLO_OFFLINE", "1")

import torch  # noqa: E402
import yaml  # noqa: E402

from benchmarks.common import key_value_args  # noqa: E402

REFUSED, OK = 2, 0


@dataclass
class Case:
    category: str
    title: str
    argv: list[str]
    expect: int = REFUSED


class _Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def make_inputs(w: Path) -> dict[str, str]:
    """Every input file the cases name, under W/inputs; returns the placeholders of the case table."""
    from yolo_compress import YOLO
    from yolo_compress.data.synthetic import make_dataset
    from yolo_compress.commands.prune import run as prune_command

    i = w / "inputs"
    data = make_dataset(i / "synth", n_train=8, n_val=4, imgsz=64)
    YOLO("yolo26n.yaml").train(data=str(data), epochs=1, imgsz=64, batch=8, workers=0, plots=False,
                               project=str(i / "runs"), name="base", exist_ok=True)
    model = i / "runs" / "base" / "weights" / "best.pt"
    pruned = prune_command({"model": str(model), "pruning_ratio": 0.3, "imgsz": 64, "project": str(i / "runs"),
                            "name": "pruned", "exist_ok": True})
    torch.save({"model": _Payload(w / "PWNED"), "train_args": {"imgsz": 64}}, i / "hostile.pt")
    (i / "broken.pt").write_bytes(os.urandom(2048))
    (i / "empty.pt").write_bytes(b"")
    from ultralytics.utils import ASSETS

    shutil.copy(ASSETS / "bus.jpg", i / "image.pt")
    (i / "model.onnx").write_bytes(b"not onnx")
    (i / "malformed.yaml").write_text("train: [unclosed\n  names: {0: a\n")
    (i / "list.yaml").write_text("- a\n- b\n")
    _dataset_variants(i, data)
    recipes = {
        "traversal": {"stages": [{"name": "a/../../../victim", "prune": {"pruning_ratio": 0.3}}]},
        "unknown_key": {"stages": [{"name": "p", "prune": {}}], "colour": "red"},
        "dup_names": {"stages": [{"name": "p", "prune": {}}, {"name": "p", "prune": {}}]},
        "two_commands": {"stages": [{"name": "p", "prune": {}, "train": {}}]},
        "late_bad_arg": {"stages": [{"name": "ft", "train": {"epochs": 1}},
                                    {"name": "p", "prune": {"pruning_ratio": 1.5}}]},
        "unknown_stage_arg": {"stages": [{"name": "ft", "train": {"epochs": 1, "lamda_bn": 1}}]},
        "bad_teacher_ref": {"stages": [{"name": "ft", "train": {"epochs": 1, "distillation": True,
                                                                "teacher_model": "stage:nope"}}]},
        "empty_stages": {"stages": []},
        "one_epoch": {"stages": [{"name": "ft", "train": {"epochs": 1, "plots": False, "workers": 0}}]},
        "prune_only": {"stages": [{"name": "p", "prune": {"pruning_ratio": 0.3}}]},
    }
    for name, body in recipes.items():
        (i / f"recipe_{name}.yaml").write_text(yaml.safe_dump(body))
    (i / "shortcuts_bad.yaml").write_text("multipliers: [1, 2\n")
    inside = w / "runs" / "pipe_input_inside" / "pl" / "stage1_ft" / "weights"
    inside.mkdir(parents=True)
    shutil.copy(model, inside / "best.pt")
    return {"W": str(w), "I": str(i), "data": str(data), "model": str(model), "pruned": str(pruned),
            "hostile": str(i / "hostile.pt"), "inside": str(inside / "best.pt")}


def _dataset_variants(i: Path, data: Path) -> None:
    """data.yaml files that point at a missing split, an empty split and labels with out-of-range classes."""
    root = data.parent
    base = {"path": str(root), "train": "images/train", "val": "images/val", "names": {0: "a", 1: "b"}}
    (i / "data_missing_split.yaml").write_text(yaml.safe_dump({**base, "val": "images/nowhere"}))
    (i / "data_no_names.yaml").write_text(yaml.safe_dump({"path": str(root), "train": "images/train",
                                                          "val": "images/val"}))
    bad = i / "badlabels"
    shutil.copytree(root / "images", bad / "images")
    for split in ("train", "val"):
        (bad / "labels" / split).mkdir(parents=True)
        for f in (root / "labels" / split).glob("*.txt"):
            (bad / "labels" / split / f.name).write_text("\n".join(
                f"9 {line.split(' ', 1)[1]}" for line in f.read_text().splitlines()) + "\n")
    (i / "data_bad_labels.yaml").write_text(yaml.safe_dump({**base, "path": str(bad)}))
    empty = i / "emptyset"
    for split in ("train", "val"):
        (empty / "images" / split).mkdir(parents=True)
    (i / "data_empty.yaml").write_text(yaml.safe_dump({**base, "path": str(empty)}))


def cases() -> list[Case]:
    t = ["train", "model={model}", "data={data}", "epochs=1", "imgsz=64", "workers=0", "plots=False"]
    q = ["quantize", "model={model}", "data={data}", "imgsz=64", "runs=2"]
    p = ["prune", "model={model}", "imgsz=64"]
    pipe = ["pipeline", "model={model}", "data={data}", "imgsz=64", "epochs=1"]
    a = "arguments"
    rows = [
        Case(a, "misspelled compression argument", [*t, "lamda_l1=1e-4"]),
        Case(a, "negative L1 coefficient", [*t, "l1_regularization=True", "lambda_l1=-1"]),
        Case(a, "pruning_ratio above 1 in train", [*t, "pruning=True", "pruning_ratio=1.5"]),
        Case(a, "unknown importance metric", [*t, "pruning=True", "importance_metric=magic"]),
        Case(a, "unknown distillation type", [*t, "distillation=True", "teacher_model={model}", "distill_type=x"]),
        Case(a, "temperature 0", [*t, "distillation=True", "teacher_model={model}", "temperature=0"]),
        Case(a, "train imgsz=0", [*t[:-3], "imgsz=0"]),
        Case(a, "train epochs as text", [*t[:3], "epochs=many"]),
        Case(a, "prune pruning_ratio=0", [*p, "pruning_ratio=0"]),
        Case(a, "prune pruning_ratio=1", [*p, "pruning_ratio=1"]),
        Case(a, "prune round_to=0", [*p, "round_to=0"]),
        Case(a, "prune global=maybe", [*p, "global=maybe"]),
        Case(a, "prune imgsz=16", ["prune", "model={model}", "imgsz=16"]),
        Case(a, "quantize calibration=kl", [*q, "calibration=kl"]),
        Case(a, "quantize fraction=0", [*q, "fraction=0"]),
        Case(a, "quantize layout=fast", [*q, "layout=fast"]),
        Case(a, "quantize format=tensorrt", [*q, "format=tensorrt"]),
        Case(a, "quantize nothing selected", [*q, "int8=False"]),
        Case(a, "compare with one model", ["compare", "{model}"]),
        Case(a, "unknown sub-command", ["prun", "model={model}"]),
        Case(a, "argument without value", ["analyze", "{model}", "imgsz="]),
        Case(a, "analyze without model", ["analyze"]),
        Case(a, "suggest target_flops=2", ["suggest", "model={model}", "target_flops=2"]),
        Case(a, "auto with two targets", ["auto", "model={model}", "data={data}", "target_flops=0.5",
                                          "target_latency_ms=5"]),
        Case(a, "auto without a target", ["auto", "model={model}", "data={data}"]),
        Case(a, "data synth n_train=0", ["data", "synth", "out=set", "n_train=0"]),
        Case(a, "cfg= file missing", ["cfg={I}/nowhere.yaml"]),
        Case(a, "cfg= malformed YAML", ["cfg={I}/malformed.yaml"]),
        Case(a, "cfg= a YAML list", ["cfg={I}/list.yaml"]),
        Case(a, "help", ["help"], OK),
    ]
    f = "files"
    for label, path in (("missing", "{I}/nowhere.pt"), ("random bytes", "{I}/broken.pt"), ("empty", "{I}/empty.pt"),
                        ("a JPEG named .pt", "{I}/image.pt")):
        rows += [Case(f, f"train model= {label}", ["train", f"model={path}", "data={data}", "epochs=1", "imgsz=64"]),
                 Case(f, f"prune model= {label}", ["prune", f"model={path}", "imgsz=64"]),
                 Case(f, f"quantize model= {label}", ["quantize", f"model={path}", "data={data}", "imgsz=64"])]
    rows += [
        Case(f, "analyze a broken .pt", ["analyze", "{I}/broken.pt"]),
        Case(f, "compare with a broken .pt", ["compare", "{model}", "{I}/broken.pt"]),
        Case(f, "report of a missing path", ["report", "{I}/nowhere.pt"]),
        Case(f, "prune an .onnx", ["prune", "model={I}/model.onnx"]),
        Case(f, "train data= missing", ["train", "model=yolo26n.yaml", "data={I}/nowhere.yaml", "epochs=1"]),
        Case(f, "train data= malformed YAML", ["train", "model=yolo26n.yaml", "data={I}/malformed.yaml"]),
        Case(f, "train data= split folder missing", ["train", "model=yolo26n.yaml", "data={I}/data_missing_split.yaml"]),
        Case(f, "train data= without names", ["train", "model=yolo26n.yaml", "data={I}/data_no_names.yaml"]),
        Case(f, "train data= every label invalid", ["train", "model=yolo26n.yaml", "data={I}/data_bad_labels.yaml",
                                                    "epochs=1", "imgsz=64", "workers=0"]),
        Case(f, "train data= no images", ["train", "model=yolo26n.yaml", "data={I}/data_empty.yaml", "epochs=1",
                                          "imgsz=64"]),
        Case(f, "quantize data= missing", [*q[:2], "data={I}/nowhere.yaml", "imgsz=64"]),
        Case(f, "quantize data= no images", [*q[:2], "data={I}/data_empty.yaml", "imgsz=64"]),
    ]
    d = "distillation"
    kd = [*t, "distillation=True"]
    rows += [
        Case(d, "distillation without a teacher", kd),
        Case(d, "teacher missing", [*kd, "teacher_model={I}/nowhere.pt"]),
        Case(d, "teacher random bytes", [*kd, "teacher_model={I}/broken.pt"]),
        Case(d, "teacher is an .onnx", [*kd, "teacher_model={I}/model.onnx"]),
        Case(d, "distill_alpha=2", [*kd, "teacher_model={model}", "distill_alpha=2"]),
        Case(d, "unknown feature loss", [*kd, "teacher_model={model}", "distill_type=feature",
                                         "distill_feature_loss=l7"]),
    ]
    pr = "pruning"
    rows += [
        Case(pr, "taylor without data", [*p, "importance_metric=taylor"]),
        Case(pr, "shortcut_config file missing", [*p, "preserve_shortcuts=True", "shortcut_config={I}/nowhere.yaml"]),
        Case(pr, "shortcut_config malformed", [*p, "preserve_shortcuts=True", "shortcut_config={I}/shortcuts_bad.yaml"]),
        Case(pr, "prune_at_epoch after the last epoch", [*t, "pruning=True", "prune_at_epoch=5"]),
        Case(pr, "a valid prune writes only into its run", [*p, "pruning_ratio=0.3", "project=."], OK),
        Case(pr, "prune onto its own input", ["prune", "model={pruned}", "imgsz=64", "project={I}/runs",
                                             "name=pruned", "exist_ok=True"]),
    ]
    o = "output safety"
    rows += [
        Case(o, "quantize output= the input .pt", [*q, "output={model}"]),
        Case(o, "quantize output= a new .pt", [*q, "output=new.pt"]),
        Case(o, "train into the input's run folder", [*t, "project={I}/runs", "name=base", "exist_ok=True"]),
        Case(o, "data synth into an existing set", ["data", "synth", "out={I}/synth", "n_train=2", "imgsz=64"]),
        Case(o, "report output with an unknown suffix", ["report", "{model}", "output=report.pdf"]),
        Case(o, "analyze json= the input model", ["analyze", "{model}", "json={model}"]),
        Case(o, "analyze plot= the input model", ["analyze", "{model}", "plot={model}"]),
        Case(o, "a valid quantize writes only into its run", [*q, "int8=False", "half=True", "val=False",
                                                             "output=out", "project=."], OK),
    ]
    r = "resume"
    rows += [
        Case(r, "resume a missing checkpoint", ["train", "model={I}/nowhere.pt", "resume=True"]),
        Case(r, "resume a broken checkpoint", ["train", "model={I}/broken.pt", "resume=True"]),
        Case(r, "resume a finished run", ["train", "model={model}", "resume=True"]),
    ]
    pl = "pipeline"
    rows += [
        Case(pl, "unknown recipe", ["pipeline", "nowhere", "model={model}", "data={data}"]),
        Case(pl, "malformed recipe YAML", ["pipeline", "{I}/malformed.yaml", "model={model}", "data={data}"]),
        Case(pl, "recipe is a YAML list", ["pipeline", "{I}/list.yaml", "model={model}", "data={data}"]),
        Case(pl, "stage name with ../", [*pipe, "{I}/recipe_traversal.yaml", "project=."]),
        Case(pl, "recipe name with ../", [*pipe, "two_stage", "name=../../x", "project=."]),
        Case(pl, "unknown recipe key", [*pipe, "{I}/recipe_unknown_key.yaml"]),
        Case(pl, "duplicate stage names", [*pipe, "{I}/recipe_dup_names.yaml"]),
        Case(pl, "a stage with two commands", [*pipe, "{I}/recipe_two_commands.yaml"]),
        Case(pl, "empty stage list", [*pipe, "{I}/recipe_empty_stages.yaml"]),
        Case(pl, "bad value in a later stage", [*pipe, "{I}/recipe_late_bad_arg.yaml", "project=."]),
        Case(pl, "misspelled argument in a stage", [*pipe, "{I}/recipe_unknown_stage_arg.yaml", "project=."]),
        Case(pl, "teacher names a stage that never ran", [*pipe, "{I}/recipe_bad_teacher_ref.yaml", "project=."]),
        Case(pl, "input inside the run folder", ["pipeline", "{I}/recipe_one_epoch.yaml", "model={inside}",
                                                 "data={data}", "project={W}/runs/pipe_input_inside", "name=pl"]),
        Case(pl, "a failing stage (missing data)", ["pipeline", "{I}/recipe_one_epoch.yaml", "model={model}",
                                                    "data={I}/nowhere.yaml", "project=."]),
        Case(pl, "unknown pipeline argument", [*pipe, "two_stage", "colour=red"]),
        Case(pl, "a valid one-stage pipeline", ["pipeline", "{I}/recipe_prune_only.yaml", "model={model}",
                                                "data={data}", "imgsz=64", "project=."], OK),
    ]
    s = "security"
    h = "{hostile}"
    rows += [
        Case(s, "hostile .pt: analyze", ["analyze", h]),
        Case(s, "hostile .pt: compare", ["compare", "{model}", h]),
        Case(s, "hostile .pt: prune", ["prune", f"model={h}", "imgsz=64"]),
        Case(s, "hostile .pt: quantize", ["quantize", f"model={h}", "data={data}"]),
        Case(s, "hostile .pt: quantize imgsz= given", ["quantize", f"model={h}", "data={data}", "imgsz=64"]),
        Case(s, "hostile .pt: train", ["train", f"model={h}", "data={data}", "epochs=1", "imgsz=64"]),
        Case(s, "hostile .pt: teacher", [*kd, f"teacher_model={h}"]),
        Case(s, "hostile .pt: pipeline", ["pipeline", "{I}/recipe_one_epoch.yaml", f"model={h}", "data={data}",
                                          "imgsz=64", "project=."]),
        Case(s, "hostile .pt: auto", ["auto", f"model={h}", "data={data}", "target_flops=0.5", "imgsz=64"]),
        Case(s, "hostile .pt: report", ["report", h]),
        Case(s, "hostile .pt: suggest", ["suggest", f"model={h}", "imgsz=64"]),
        Case(s, "hostile .pt: resume", ["train", f"model={h}", "resume=True"]),
    ]
    return rows


def _snapshot(w: Path, skip: Path) -> dict[str, tuple]:
    """Every file under W outside `skip`: size and mtime, plus a SHA-256 for inputs."""
    out = {}
    for path in w.rglob("*"):
        if not path.is_file() or path.is_relative_to(skip) or path.suffix == ".cache":
            continue
        st = path.stat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_relative_to(w / "inputs") else None
        out[str(path.relative_to(w))] = (st.st_size, st.st_mtime_ns, digest)
    return out


def run_case(case: Case, k: int, values: dict[str, str]) -> dict:
    """Run one case from inside its run folder; the outcome and whether every check held."""
    from yolo_compress.cli import entrypoint

    w = Path(values["W"])
    run_dir = w / "runs" / f"{k:03d}"
    run_dir.mkdir(parents=True, exist_ok=True)
    argv = [a.format(**values) for a in case.argv]
    argv = argv + [f"project={run_dir}"] if not any(a.startswith(("project=", "cfg=")) for a in argv) and argv[0] in {
        "train", "prune", "suggest", "pipeline", "auto", "quantize"} else argv
    before = _snapshot(w, run_dir)
    err, code, crash = io.StringIO(), None, ""
    cwd = os.getcwd()
    os.chdir(run_dir)
    start = time.perf_counter()
    try:
        sys.argv = ["yolo-compress", *argv]
        with contextlib.redirect_stderr(err):
            entrypoint()
        code = 0
    except SystemExit as e:
        code = e.code
    except BaseException as e:  # noqa: BLE001 - a traceback is the outcome this script exists to catch
        crash = "".join(traceback.format_exception_only(type(e), e)).strip().splitlines()[-1]
    finally:
        os.chdir(cwd)
    after = _snapshot(w, run_dir)
    lines = [x for x in err.getvalue().splitlines() if x.startswith("yolo-compress: error:")]
    touched = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    problems = []
    if crash:
        problems.append(f"traceback: {crash}")
    elif code != case.expect:
        problems.append(f"exit {code}, expected {case.expect}")
    elif code == REFUSED and len(lines) != 1:
        problems.append(f"{len(lines)} error lines")
    if touched:
        problems.append(f"touched outside its run: {', '.join(touched[:3])}")
    if (w / "PWNED").exists():
        problems.append("the hostile payload ran")
        (w / "PWNED").unlink()
    said = lines[-1].removeprefix("yolo-compress: error: ") if lines else ("accepted" if code == 0 else crash)
    return {"case": case, "argv": argv, "said": said, "problems": problems, "seconds": time.perf_counter() - start}


def _cell(text: str, values: dict[str, str], limit: int = 150) -> str:
    for key in ("I", "W"):
        text = text.replace(values[key], f"<{key}>")
    text = text.replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _distinctive(argv: list[str], values: dict[str, str]) -> str:
    """The command line without the arguments every case of its kind shares (model, data, small sizes, project)."""
    common = {f"model={values['model']}", f"data={values['data']}", "epochs=1", "imgsz=64", "workers=0",
              "plots=False", "runs=2"}
    return " ".join(a for a in argv if a not in common and not a.startswith("project="))


def write_doc(results: list[dict], values: dict[str, str], doc: Path, seconds: float) -> None:
    passed = sum(not r["problems"] for r in results)
    lines = [
        "# Reliability: bad and hostile inputs",
        "",
        "Generated by `YOLO_OFFLINE=1 python benchmarks/bad_inputs.py` (do not edit by hand): every row is one",
        "`yolo-compress` command line run from inside its own run folder. A row passes when the command ends as",
        "expected (refused with exactly one `yolo-compress: error:` line and exit 2, or accepted), with no traceback,",
        "no file outside its run folder created, changed or removed, every input file's SHA-256 unchanged and no",
        "hostile checkpoint payload run. `<I>` is the folder of the inputs (a 1-epoch yolo26n on 8 synthetic images,",
        "its pruned copy, broken and hostile files, recipes); `<W>` the work folder.",
        "",
        f"**{passed} of {len(results)} cases pass** ({seconds:.0f} s on this machine, one run).",
        "",
        "Ultralytics writes label caches (`labels/*.cache`) beside a dataset the first time it reads it; that is",
        "stock behaviour and the only write outside a run folder this table ignores.",
        "",
        "| # | category | input | what it gets | ok |",
        "|---:|---|---|---|---|",
    ]
    for k, r in enumerate(results, 1):
        case = r["case"]
        said = "; ".join(r["problems"]) if r["problems"] else r["said"]
        lines.append(f"| {k} | {case.category} | {case.title}: `{_cell(_distinctive(r['argv'], values), values, 110)}` | "
                     f"{_cell(said, values)} | {'no' if r['problems'] else 'yes'} |")
    doc.write_text("\n".join(lines) + "\n")


def main(out: str = "runs/bad_inputs", doc: str = "docs/reliability.md") -> int:
    w = Path(out).resolve()
    if w.exists():
        shutil.rmtree(w)
    w.mkdir(parents=True)
    values = make_inputs(w)
    start = time.perf_counter()
    results = []
    for k, case in enumerate(cases(), 1):
        r = run_case(case, k, values)
        results.append(r)
        print(f"{k:3d} {'ok  ' if not r['problems'] else 'FAIL'} {r['seconds']:6.1f}s {case.category}: {case.title}: "
              f"{'; '.join(r['problems']) or r['said'][:120]}", file=sys.__stdout__, flush=True)
    write_doc(results, values, Path(doc), time.perf_counter() - start)
    failed = [r for r in results if r["problems"]]
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed", file=sys.__stdout__)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(**key_value_args(sys.argv[1:])))
