import pytest

from yolo_compress.cfg import DEFAULTS, SPEC, TRAIN_ARGS, ArgumentError, validate

SEED_DEFAULTS = {  # shared/seeds/000_bd2c18a451204c71.txt, "Configuration Parameters Added"
    "l1_regularization": False,
    "lambda_l1": 0.00001,
    "structured_l1": False,
    "lambda_bn": 0.0001,
    "pruning": False,
    "pruning_ratio": 0.3,
    "pruning_method": "channel",
    "importance_metric": "l2",  # the seed said l1; l2 kept most on real photographs (docs/pruning.md, issue #17)
    "prune_at_epoch": 50,
    "distillation": False,
    "teacher_model": None,
    "temperature": 4.0,
    "distill_alpha": 0.7,
    "distill_features": False,
    "distill_type": "response",
}


def test_seed_arguments_have_seed_defaults():
    assert {k: DEFAULTS[k] for k in SEED_DEFAULTS} == SEED_DEFAULTS
    assert set(SEED_DEFAULTS) <= set(TRAIN_ARGS)


def test_every_spec_entry_is_well_formed():
    for name, s in SPEC.items():
        assert s["type"] in {"bool", "int", "float", "str", "path"}, name
        if s["default"] is not None:
            validate({name: s["default"]}, [name])  # the default itself is accepted


@pytest.mark.parametrize(
    "name, value",
    [
        ("pruning_ratio", 1.5),
        ("pruning_ratio", 0.0),
        ("pruning_ratio", 1.0),
        ("importance_metric", "foo"),
        ("lambda_l1", -1),
        ("l1_regularization", 3),
        ("prune_at_epoch", 2.5),
        ("prune_at_epoch", -1),
        ("temperature", 0),
        ("distill_alpha", 1.1),
        ("distill_type", "logits"),
    ],
)
def test_bad_values_name_argument_value_and_accepted(name, value):
    with pytest.raises(ArgumentError) as e:
        validate({name: value}, TRAIN_ARGS)
    msg = str(e.value)
    assert f"'{name}={value}'" in msg and "Valid" in msg and "\n" not in msg


def test_good_values_are_cast():
    out = validate({"lambda_l1": 1, "pruning_ratio": 0.5, "importance_metric": "bn", "teacher_model": None}, TRAIN_ARGS)
    assert out == {"lambda_l1": 1.0, "pruning_ratio": 0.5, "importance_metric": "bn", "teacher_model": None}
    assert isinstance(out["lambda_l1"], float)


def test_unknown_argument_suggests_the_close_name():
    with pytest.raises(ArgumentError, match="'prunning' is not a valid.*Did you mean 'pruning'"):
        validate({"prunning": True}, TRAIN_ARGS)
