"""Which integer dot-product instructions this CPU has, to pick ONNX Runtime INT8 settings that are fast on it."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

VNNI_FLAGS = {"avx512_vnni", "avx_vnni", "amx_int8"}


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """CPU feature flags from /proc/cpuinfo; empty where that file does not exist (then no VNNI is assumed)."""
    info = Path("/proc/cpuinfo")
    if not info.is_file():
        return frozenset()
    for line in info.read_text(errors="ignore").splitlines():
        if line.startswith(("flags", "Features")):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def has_vnni() -> bool:
    """True on AVX-512-VNNI, AVX-VNNI or AMX CPUs: their u8 x s8 dot products cannot saturate, so 8-bit weights
    keep their full range. Without VNNI, x86 uses VPMADDUBSW, whose int16 sums can overflow: weights then need
    reduce_range (7 bits)."""
    return bool(VNNI_FLAGS & cpu_flags())


def has_amx() -> bool:
    return "amx_int8" in cpu_flags()


def describe() -> str:
    """One line for reports."""
    return f"VNNI={'yes' if has_vnni() else 'no'} AMX={'yes' if has_amx() else 'no'}"
