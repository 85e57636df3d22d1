"""What the machine offers for training: native bf16 on the CPU decides both trainers' mixed precision."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    try:
        text = open("/proc/cpuinfo", encoding="utf-8").read()
    except OSError:
        return set()
    return {flag for line in text.splitlines() if line.startswith("flags") for flag in line.split(":", 1)[1].split()}


def cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX: bf16 matrix maths in hardware, where bf16 autocast is worth it on a CPU."""
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


def cpu_has_amx() -> bool:
    """Intel AMX tiles: where TensorFlow's bf16 kernels beat float32 on a CPU."""
    return "amx_bf16" in cpu_flags()
