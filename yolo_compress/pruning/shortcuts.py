"""Shortcut-aware ratios: classify each coupled channel group by the connections it touches."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from yolo_compress.cfg import read_mapping

SHORTCUT_TYPES = ("residual", "fusion", "csp", "attention", "regular")  # tie-break order, most fragile first
CONFIG_DIR = Path(__file__).resolve().parent.parent / "cfg" / "pruning"
DEFAULT_CONFIG = CONFIG_DIR / "yolo26_shortcuts.yaml"


def resolve_config(config_file: str | Path | None) -> Path:
    """Map ``None``/a short name like ``yolo26`` to a bundled YAML, or accept a path to a user YAML."""
    if config_file is None or str(config_file) == "":
        return DEFAULT_CONFIG
    path = Path(config_file)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise ValueError(f"shortcut_config={config_file} does not exist; accepted: a YAML file or 'yolo26'")
        return path
    bundled = CONFIG_DIR / f"{config_file}_shortcuts.yaml"
    if not bundled.is_file():
        names = sorted(p.name.removesuffix("_shortcuts.yaml") for p in CONFIG_DIR.glob("*_shortcuts.yaml"))
        raise ValueError(f"shortcut_config={config_file} is unknown; accepted: a YAML file or {', '.join(names)}")
    return bundled


def load_multipliers(config_file: str | Path | None) -> dict[str, float]:
    """Read the per-type ratio multipliers; every type must be present and non-negative."""
    path = resolve_config(config_file)
    mult = read_mapping(path, "shortcut_config").get("multipliers", {})
    missing = [t for t in SHORTCUT_TYPES if t not in mult]
    if missing:
        raise ValueError(f"shortcut_config={path} lacks multipliers for {', '.join(missing)}")
    bad = {t: mult[t] for t in SHORTCUT_TYPES if not isinstance(mult[t], (int, float)) or mult[t] < 0}
    if bad:
        raise ValueError(f"shortcut_config={path} has invalid multipliers {bad}; accepted: numbers >= 0")
    return {t: float(mult[t]) for t in SHORTCUT_TYPES}


def classify(touched: set[str], multipliers: dict[str, float]) -> str:
    """Pick the touched type with the smallest multiplier: a group is as fragile as its most fragile connection."""
    kinds = [t for t in SHORTCUT_TYPES if t in touched] or ["regular"]
    return min(kinds, key=lambda t: (multipliers[t], SHORTCUT_TYPES.index(t)))


def convs_in(modules: list[nn.Module]) -> set[nn.Conv2d]:
    """All Conv2d layers inside ``modules``."""
    return {c for m in modules for c in m.modules() if isinstance(c, nn.Conv2d)}
