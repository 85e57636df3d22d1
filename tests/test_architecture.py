"""The tree's layering and the family registry, checked: imports only point down, families declare themselves."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.models.registry import FAMILY_MODULES, families

REPO = Path(__file__).resolve().parents[1]
UPPER = ("fastai_model", "keras_model", "tm_replica", "cloud_baselines", "tools", "dashboard", "api")
# each layer of benchmarks/ and what it may import (itself and the layers below it); training and serving are
# siblings above models and never import each other
LAYERS = {
    "data": {"data"},
    "evaluation": {"data", "evaluation"},
    "models": {"data", "evaluation", "models"},
    "training": {"data", "evaluation", "models", "training"},
    "serving": {"data", "evaluation", "models", "serving"},
    "exports": {"data", "evaluation", "models", "serving", "exports"},
    "runner": {"data", "evaluation", "models", "training", "serving", "exports", "runner"},
    "tuning": {"data", "evaluation", "models", "training", "serving", "exports", "runner", "tuning"},
    "robustness": {"data", "evaluation", "models", "serving", "runner", "robustness"},
}
FAMILIES = ("fastai_model", "keras_model", "tm_replica", "cloud_baselines")


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
        elif isinstance(node, ast.ImportFrom) and node.level == 2 and node.module:  # from ..layer import x
            names.add(f"benchmarks.{node.module}")
    return names


@pytest.mark.parametrize("path", sorted((REPO / "benchmarks").rglob("*.py")), ids=lambda p: str(p.relative_to(REPO)))
def test_the_core_imports_only_downwards(path):
    imports = imported_modules(path)
    upward = sorted(m for m in imports if m.split(".")[0] in UPPER)
    assert not upward, f"{path}: the core must not import {upward} (go through the registry)"
    layer = path.relative_to(REPO / "benchmarks").parts[0]
    if layer in LAYERS:
        above = sorted(
            m
            for m in imports
            if m.startswith("benchmarks.") and m.split(".")[1] in LAYERS and m.split(".")[1] not in LAYERS[layer]
        )
        assert not above, f"{path}: the {layer} layer must not import {above}"


def test_families_below_the_tools_never_import_the_tools_dashboard_or_api():
    for package in FAMILIES:
        for path in (REPO / package).rglob("*.py"):
            upward = sorted(m for m in imported_modules(path) if m.split(".")[0] in ("tools", "dashboard", "api"))
            assert not upward, f"{path} imports {upward}"


@pytest.mark.parametrize("package", FAMILIES)
def test_families_never_import_each_other(package):
    """What two families share lives below both (``benchmarks/exports`` for the TM export reader), so each family
    can be read, changed or removed alone."""
    for path in (REPO / package).rglob("*.py"):
        sideways = sorted(m for m in imported_modules(path) if m.split(".")[0] in set(FAMILIES) - {package})
        assert not sideways, f"{path} imports another family: {sideways}"


def test_every_family_is_declared_once_with_an_importable_predictor_and_trainer():
    found = families()
    assert {
        "prior",
        "linear_probe",
        "fastai",
        "keras",
        "teachable_machine_replica",
        "teachable_machine",
        "vertex_automl",
        "vision_api",
        "roboflow",
    } <= set(found)
    assert len(FAMILY_MODULES) == len(set(FAMILY_MODULES))
    for family in found.values():
        for reference in filter(
            None,
            (
                family.predictor and family.predictor.split(":")[0],
                family.command and family.command.module,
                family.throughput,
            ),
        ):
            assert importlib.util.find_spec(reference) is not None, f"{family.kind}: {reference} is not importable"


def test_listing_the_families_imports_no_framework():
    code = (
        "import sys; from benchmarks.models.registry import families; families(); "
        "print(sorted(m for m in ('torch', 'tensorflow', 'keras', 'fastai') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr or out.stdout


def test_make_demo_runs_every_family_demo_step_from_the_registry():
    out = subprocess.run(
        [sys.executable, "-m", "tools.demo", "--dry-run"], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert out.returncode == 0
    for family in families().values():
        for title, argv in family.demo_commands("DATA", "RESULTS"):
            assert title in out.stdout and family.command.module in out.stdout and "--skip-existing" in argv


def test_every_family_command_takes_the_one_cli_convention(tmp_path):
    """``--dataset DIR --results DIR``, whatever the family: one convention, built by the registry."""
    for family in families().values():
        if family.command is None:
            continue
        out = subprocess.run(
            [sys.executable, "-m", *family.command.argv(tmp_path / "missing", tmp_path), "--help"],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=120,
        )
        assert out.returncode == 0 and "--dataset" in out.stdout and "--skip-existing" in out.stdout, family.kind


def test_the_architecture_page_names_every_module_of_the_core_and_the_dashboard():
    """docs/architecture.md is drawn from the tree: a module added, moved or renamed without it fails here."""
    page = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    modules = [*(REPO / "benchmarks").glob("*/*.py"), *(REPO / "tools").glob("*.py")]
    missing = sorted(
        str(path.relative_to(REPO)) for path in modules if path.name != "__init__.py" and f"`{path.name}`" not in page
    )
    assert not missing, f"docs/architecture.md does not name: {missing}"


def test_a_family_declares_the_presets_its_command_takes():
    """ModelFamily.presets() reads the family's own PRESETS (one source): the names its --preset accepts."""
    import subprocess
    import sys

    from benchmarks.models.registry import families

    for family in families().values():
        if family.presets():
            shown = subprocess.run([sys.executable, "-m", family.command.module, "--help"], capture_output=True,
                                   text=True).stdout  # fmt: skip
            assert "{" + ",".join(family.presets()) + "}" in shown.replace(" ", ""), family.kind
