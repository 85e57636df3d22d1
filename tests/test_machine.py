"""The machine a run records: an ISA cap (ONEDNN_MAX_CPU_ISA) is what the frameworks compute with, so it is what
run.json names and what the trainers' automatic precision follows."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.evaluation import machine
from benchmarks.runner.figures import describe_machine
from benchmarks.training.hardware import cpu_has_native_bf16

REPO = Path(__file__).resolve().parents[1]
EPYC_FLAGS = frozenset({"sse4_1", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_bf16"})


@pytest.fixture
def epyc(monkeypatch):
    for name in machine.ISA_CAP_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(machine, "_cpuinfo_flags", lambda: EPYC_FLAGS)
    monkeypatch.setattr(machine, "_cpu_name", lambda: "AMD EPYC")
    return monkeypatch


def test_without_a_cap_the_cpu_reports_its_own_features(epyc):
    assert machine.isa_cap() is None
    assert machine._cpu_features() == ["avx2", "avx512f", "avx512_bf16"]
    assert cpu_has_native_bf16()


def test_an_avx2_cap_hides_avx512_and_turns_off_bf16(epyc):
    epyc.setenv("ONEDNN_MAX_CPU_ISA", "avx2")
    assert machine.isa_cap() == "AVX2"
    assert machine.cpu_flags() == {"sse4_1", "avx", "avx2", "fma"}
    assert not cpu_has_native_bf16()
    described = describe_machine(machine.environment())
    assert described.startswith("AMD EPYC (avx2, capped at AVX2), ")


def test_an_avx512_cap_keeps_avx512_but_not_bf16(epyc):
    epyc.setenv("DNNL_MAX_CPU_ISA", "AVX512_CORE")
    assert machine._cpu_features() == ["avx2", "avx512f", "capped at AVX512_CORE"]
    assert not cpu_has_native_bf16()


@pytest.mark.parametrize("value", ["ALL", "", "not-an-isa"])
def test_no_cap_or_an_unknown_one_leaves_the_features_alone(epyc, value):
    epyc.setenv("ONEDNN_MAX_CPU_ISA", value)
    assert machine.isa_cap() is None
    assert machine.cpu_flags() == set(EPYC_FLAGS)


def test_the_avx2_script_caps_pytorch_and_what_the_run_records():
    check = (
        "import json, torch; from benchmarks.evaluation.machine import environment; "
        "print(json.dumps([torch.backends.cpu.get_cpu_capability(), environment()['cpu_features']]))"
    )
    done = subprocess.run(
        ["bash", "scripts/as-avx2.sh", sys.executable, "-c", check], capture_output=True, text=True, cwd=REPO
    )
    assert done.returncode == 0, done.stderr[-1000:]
    capability, features = json.loads(done.stdout.strip().splitlines()[-1])
    assert capability in ("AVX2", "DEFAULT")  # DEFAULT: a CPU without AVX2, which the cap cannot raise
    assert features[-1] == "capped at AVX2" and not any(f.startswith(("avx512", "amx")) for f in features)
    usage = subprocess.run(["bash", "scripts/as-avx2.sh"], capture_output=True, text=True, cwd=REPO)
    assert usage.returncode == 2 and "usage: bash scripts/as-avx2.sh COMMAND" in usage.stdout
