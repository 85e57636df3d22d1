"""The docs cannot drift from the code: every command they name exists, and the figures README quotes come from the
one generated file (docs/figures.md, rendered by ``python -m benchmarks figures``)."""

from __future__ import annotations

import argparse
import importlib.util
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), *sorted(REPO.glob("*/ease.toml"))]
COMMAND = re.compile(r"python -m ([A-Za-z_][\w.]*)(?: ([a-z][a-z-]*))?")
CLOUD_SUBCOMMAND = re.compile(r"(?<![\w/.-])((?:tm|vertex|vision|roboflow)-[a-z]+)\b")
MAKE_TARGET = re.compile(r"`make ([a-z][a-z-]*)")
NOT_COMMANDS = {"tm-upload"}  # the folder tm-export writes, named in the docs beside the command


def subcommands(module: str) -> set[str]:
    parser = importlib.import_module(module).build_parser()
    (choices,) = [a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return set(choices)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_command_a_page_names_exists(page):
    text = page.read_text(encoding="utf-8")
    with_subcommands = {
        "benchmarks": subcommands("benchmarks.cli"),
        "cloud_baselines": subcommands("cloud_baselines.cli"),
    }
    missing = []
    for module, word in COMMAND.findall(text):
        if module.isupper():  # a placeholder: python -m MODULE
            continue
        if importlib.util.find_spec(module) is None:
            missing.append(f"python -m {module}")
        elif module in with_subcommands and word and word not in with_subcommands[module]:
            missing.append(f"python -m {module} {word}")
    cloud = with_subcommands["cloud_baselines"] | NOT_COMMANDS
    missing += [name for name in CLOUD_SUBCOMMAND.findall(text) if name not in cloud]
    targets = set(re.findall(r"^([a-z][a-z-]*):", (REPO / "Makefile").read_text(), flags=re.M))
    missing += [f"make {target}" for target in MAKE_TARGET.findall(text) if target not in targets]
    assert not missing, f"{page.name} names commands that do not exist: {sorted(set(missing))}"


FIGURE = re.compile(r"[+−-]?\d+\.\d{3}(?!\d)")
# Every page's figures must be in docs/figures.md, but the generated pages themselves and the lab notebook
# (docs/results.md: every experiment so far, each figure beside its command, machine and date).
NOT_CHECKED = {
    "docs/figures.md",
    "docs/speed.md",
    "docs/gpu.md",
    "docs/results.md",
    "docs/tuning-results.md",
    "docs/tuning-results-stampscenes.md",
    "docs/robustness-results.md",
    "docs/export-results.md",
    "docs/serving-results.md",
    "docs/learning-curves.md",
}
GENERATED_FIGURES_ONLY = sorted(
    {"README.md", *(str(p.relative_to(REPO)) for p in (REPO / "docs").glob("*.md"))} - NOT_CHECKED
)
CONSTANTS = {
    "0.999",
    "0.2989",
    "0.587",
    "0.114",
}  # settings, not results: Adam's β2 (matched recipe), TM's grey weights


def normalised(figure: str) -> str:
    return figure.replace("−", "-").lstrip("+")


@pytest.mark.parametrize("page", GENERATED_FIGURES_ONLY)
def test_every_figure_a_page_quotes_is_in_the_generated_file(page):
    generated = {normalised(f) for f in FIGURE.findall((REPO / "docs" / "figures.md").read_text(encoding="utf-8"))}
    quoted = {normalised(f) for f in FIGURE.findall((REPO / page).read_text(encoding="utf-8"))} - CONSTANTS
    assert not quoted - generated, (
        f"{page} quotes figures docs/figures.md does not hold: {sorted(quoted - generated)}; render it with "
        "`make figures` (after `make demo`) and quote from it"
    )


def test_the_figures_file_renders_leaderboard_comparisons_machine_and_demo_timing(tmp_path):
    import json

    import numpy as np

    from benchmarks.evaluation.evaluate import evaluate_run
    from benchmarks.evaluation.results import create_run
    from benchmarks.runner.figures import DEMO_TIMING, render_figures
    from tests.conftest import make_dataset

    rows = [
        (f"images/{s}{i}.png", ["a", "b", "a b", ""][i % 4], s) for s in ("train", "valid", "test") for i in range(40)
    ]
    dataset = __import__("benchmarks.data.dataset", fromlist=["load_dataset"]).load_dataset(
        make_dataset(tmp_path / "ds", rows, ["a", "b"])
    )
    results = tmp_path / "results"
    for kind, skill in (("linear_probe", 0.3), ("fastai", 0.8), ("keras", 0.8)):
        run = create_run(results, kind=kind, dataset=dataset, params={})
        targets = dataset.targets(["valid", "test"])
        noise = np.random.default_rng(len(kind)).random(targets.shape)
        split_rows = dataset.rows(["valid", "test"])
        run.write_predictions(
            list(split_rows["image"]), list(split_rows["split"]), np.clip(targets * skill + noise, 0, 1)
        )
        run.finish()
        evaluate_run(run.path)
    (results / DEMO_TIMING).write_text(json.dumps({"steps_s": {"fastai": 180.0}, "total_s": 180.0, "environment": {}}))
    text = render_figures(results, dataset, "python -m benchmarks figures")
    assert "| fastai − linear probe |" in text and "| Keras − linear probe |" in text and "| fastai − Keras |" in text
    assert "machine: " in text and "not recorded" not in text and "| fastai | 3.0 |" in text
    (results / DEMO_TIMING).write_text("{damaged")
    assert "is damaged" in render_figures(results, dataset, "python -m benchmarks figures")
