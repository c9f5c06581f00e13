"""Every sub-command checks each of its arguments in one place, its section of cfg/default.yaml, before any work."""

import ast
from pathlib import Path

import pytest

from yolo_compress import commands
from yolo_compress.cfg import COMMANDS, SECTIONS, ArgumentError, command_spec, resolve

PACKAGE = Path(commands.__file__).resolve().parents[1]


def _bad_value(s: dict):
    """A value the spec entry refuses, or None when it accepts anything of its type."""
    if "choices" in s:
        return "no-such-choice"
    if "min" in s:
        return s["min"] - 1
    return {"bool": "maybe", "int": "x", "float": "x"}.get(s["type"])


CASES = [(c, name, _bad_value(s)) for c in COMMANDS if c != "train" for name, s in command_spec(c).items()
         if _bad_value(s) is not None]


def test_every_command_has_a_module_and_a_well_formed_section():
    for name in COMMANDS:
        assert callable(commands.module(name).run), name
        section = SECTIONS[name]
        assert section["about"] and section["usage"].startswith(f"yolo-compress {name}"), name
        assert section.get("positional") in {None, *section["args"]}, name
        required = {a: s.get("choices", ["x"])[0] for a, s in section["args"].items() if s.get("required")}
        for arg, s in section["args"].items():
            assert s["type"] in {"bool", "int", "float", "str", "path", "list", "any"}, (name, arg)
            if s.get("default") is not None:
                resolve(name, {**required, arg: s["default"]}, check_files=False)  # the default itself is accepted


@pytest.mark.parametrize("command, name, value", CASES, ids=[f"{c}-{n}" for c, n, _ in CASES])
def test_a_bad_value_is_refused_at_the_start_of_its_command(command, name, value, tmp_path, monkeypatch):
    """Run through the command itself, with no other argument: the refusal comes before any file is read."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ArgumentError) as e:
        commands.run(command, {name: value})
    assert f"'{name}={value}' is invalid" in str(e.value) and "\n" not in str(e.value)
    assert not any(tmp_path.iterdir())  # nothing written


@pytest.mark.parametrize("command", [c for c in COMMANDS if c != "train"])
def test_an_unknown_argument_is_refused_with_a_hint(command):
    known = next(iter(command_spec(command)))
    with pytest.raises(ArgumentError, match=f"not a valid yolo-compress {command} argument.*Did you mean '{known}'"):
        commands.run(command, {known + "x": 1})


def test_every_argument_gets_its_default_from_the_spec():
    args = resolve("demo", {})
    assert args == {k: s["default"] for k, s in command_spec("demo").items()}
    assert resolve("prune", {"model": "m.pt", "global": True}, check_files=False)["global_pruning"] is True  # alias


def _literal_defaults(tree: ast.AST) -> list[str]:
    """`x.get("key", <literal other than None>)` calls: a default written outside the spec."""
    found = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
                and isinstance(node.func.value, ast.Name) and node.func.value.id in {"args", "overrides", "opt", "a"}
                and len(node.args) == 2 and isinstance(node.args[0], ast.Constant)
                and not (isinstance(node.args[1], ast.Constant) and node.args[1].value is None)):
            found.append(f"{node.func.value.id}.get({node.args[0].value!r}, ...) line {node.lineno}")
    return found


def test_no_argument_default_outside_the_spec():
    found = {str(p.relative_to(PACKAGE)): _literal_defaults(ast.parse(p.read_text()))
             for p in PACKAGE.rglob("*.py")}
    assert not {k: v for k, v in found.items() if v}


def test_arguments_are_checked_only_at_the_boundary():
    """cfg.validate/resolve are called by the commands, the trainer (training arguments also arrive through stock
    `YOLO.train`) and the pipeline's early check of its stages; no library function re-checks them."""
    callers = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in {"validate", "resolve"}:
                callers.add(str(path.relative_to(PACKAGE)))
    assert callers <= {"cfg/__init__.py", "trainer.py", "pipeline/runner.py"} | {
        f"commands/{p.name}" for p in (PACKAGE / "commands").glob("*.py")}


def test_choices_are_the_code_registries():
    from yolo_compress.distill.distillers import FEATURE_LOSSES
    from yolo_compress.pruning.importance import METRICS
    from yolo_compress.quantize.onnx_quant import CALIBRATION, CANDIDATES

    train, quantize = command_spec("train"), command_spec("quantize")
    assert tuple(train["importance_metric"]["choices"]) == METRICS
    assert tuple(train["distill_feature_loss"]["choices"]) == FEATURE_LOSSES
    assert list(quantize["calibration"]["choices"]) == list(CALIBRATION)
    assert quantize["layout"]["choices"] == ["auto", *(c.name for c in CANDIDATES)]
    assert set(command_spec("suggest")["importance_metric"]["choices"]) == set(METRICS) - {"taylor"}
    assert command_spec("prune")["importance_metric"] is train["importance_metric"] or \
        command_spec("prune")["importance_metric"] == train["importance_metric"]
