"""Ease of use, measured: fastai, Keras and the services side by side (``python -m benchmarks ease``, the dashboard's
Frameworks page, the HTML report).

Every number comes from a command: lines of framework-specific code counted over the source, trainer options
counted from the trainer's own parser, install footprint summed from the installed distributions' records, import
time timed in fresh interpreters (``--measure``, saved to RESULTS/ease.json), training wall time, peak memory,
model size and latency read from the runs. What cannot be counted — manual steps, what is uploaded, costs from
public prices, what is lost, pitfalls met and their workarounds with links, and opinions labelled as such — is
declared by each family package in its ``ease.toml``.
"""

from __future__ import annotations

import ast
import importlib.util
import io
import json
import re
import statistics
import subprocess
import sys
import tokenize
import tomllib
from datetime import UTC, datetime
from importlib import metadata, resources
from pathlib import Path

import pandas as pd

from benchmarks.atomic import atomic_write_json
from benchmarks.data.dataset import Dataset
from benchmarks.errors import BenchmarkError
from benchmarks.evaluation.groups import group_runs
from benchmarks.evaluation.latency import latency_of
from benchmarks.evaluation.results import Run, finished_runs_on

from .registry import FAMILY_MODULES, families

REPO = Path(__file__).resolve().parents[2]
MEASURED_FILE = "ease.json"
CORE_DISTRIBUTION = "imgbench"  # what every family shares: its closure is not counted against a framework
IMPORT_REPEATS = 3


def declared_facts() -> dict[str, dict]:
    """Each family package's ``ease.toml``, by kind (packages without one declare nothing)."""
    facts: dict[str, dict] = {}
    for package in dict.fromkeys(module.split(".")[0] for module in FAMILY_MODULES):
        try:
            text = resources.files(package).joinpath("ease.toml").read_text(encoding="utf-8")
        except (FileNotFoundError, ModuleNotFoundError):
            continue
        facts.update(tomllib.loads(text))
    return facts


def code_lines(paths: list[str]) -> int:
    """Lines of code in these packages or files: no blank lines, comments or docstrings."""
    files: list[Path] = []
    for entry in paths:
        path = REPO / entry
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return sum(_code_lines(f.read_text(encoding="utf-8")) for f in files)


def _code_lines(source: str) -> int:
    docstrings: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                docstrings.update(range(body[0].lineno, body[0].end_lineno + 1))
    lines = set()
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in skip:
            lines.update(range(token.start[0], token.end[0] + 1))
    return len(lines - docstrings)


def trainer_options(module: str) -> tuple[int, int]:
    """(options the trainer CLI offers, of which its framework's own): the ``--flags`` its ``add_argument`` calls
    name, counted in the source of the trainer module, its family's config.py and the shared trainer options (nothing
    is imported)."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise BenchmarkError(f"trainer module {module} not found")
    sources = [Path(spec.origin)]
    config = Path(spec.origin).with_name("config.py")  # where a family keeps its options and their CLI
    if config.is_file():
        sources.append(config)
    own = set().union(*(_option_flags(source.read_text(encoding="utf-8")) for source in sources))
    shared_options = importlib.util.find_spec("benchmarks.training.options").origin
    shared = _option_flags(Path(shared_options).read_text(encoding="utf-8"))
    return len(own | shared), len(own - shared)


def _option_flags(source: str) -> set[str]:
    flags = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_argument":
            for arg in node.args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value.startswith("--"):
                    flags.add(arg.value)
    return flags


def closure(names: list[str]) -> set[str]:
    """The installed distributions ``names`` need, recursively (extras left out), by normalised name."""
    from packaging.requirements import Requirement

    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = _normal(todo.pop())
        if name in seen:
            continue
        try:
            requirements = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        seen.add(name)
        for text in requirements:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return seen


def install_footprint(names: list[str]) -> dict:
    """Distributions and MB installed for ``names`` beyond what the core already needs."""
    core = closure([CORE_DISTRIBUTION]) - {CORE_DISTRIBUTION}
    own = closure(names) - core
    size = sum(_installed_bytes(name) for name in own)
    return {"distributions": len(own), "mb": round(size / 1e6, 1), "names": sorted(own)}


def _installed_bytes(name: str) -> int:
    distribution = metadata.distribution(name)
    total = 0
    for file in distribution.files or []:
        if file.size:
            total += file.size
    return total


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def measure_imports(facts: dict[str, dict], results: Path) -> dict:
    """Best-of-3 import time of each framework in a fresh interpreter, saved to RESULTS/ease.json with the date."""
    measured = {"measured": datetime.now(UTC).isoformat(timespec="seconds"), "import_s": {}}
    for kind, fact in facts.items():
        module = fact.get("import")
        if not module:
            continue
        code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
        times = []
        for _ in range(IMPORT_REPEATS):
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise BenchmarkError(f"importing {module} failed: {done.stderr.strip().splitlines()[-1:]}")
            times.append(float(done.stdout.strip().splitlines()[-1]))
        measured["import_s"][kind] = round(min(times), 2)
    atomic_write_json(results / MEASURED_FILE, measured)
    return measured


def read_measured(results: Path) -> dict:
    path = results / MEASURED_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}


def from_runs(runs: list[Run], kind: str) -> dict:
    """The newest model of this kind with the most seeds: mean training wall time and peak memory over its runs,
    the first-result wall time (created to finished), model size and batch-1 latency."""
    groups = group_runs([r for r in runs if r.kind == kind])
    if not groups:
        return {}
    group = max(groups, key=lambda g: (len(g.runs), max(r.info["created"] for r in g.runs)))
    run = max(group.runs, key=lambda r: r.info["created"])

    def mean(values):
        values = [v for v in values if isinstance(v, (int, float))]
        return round(sum(values) / len(values), 1) if values else None

    walls = []
    for member in group.runs:
        try:
            start, end = (datetime.fromisoformat(member.info[k]) for k in ("created", "finished"))
        except (KeyError, TypeError, ValueError):
            continue
        walls.append((end - start).total_seconds())
    return {
        "model": f"{group.name} ({len(group.runs)} run{'s' * (len(group.runs) > 1)})",
        "train_s": mean(r.timings.get("train_s") for r in group.runs),
        "first_result_s": mean(walls),
        "peak_rss_mb": mean(r.info.get("resources", {}).get("peak_rss_mb") for r in group.runs),
        "model_mb": round(run.model["size_bytes"] / 1e6, 1) if run.model.get("size_bytes") else None,
        "latency_ms": _median([latency_of(member)[0] for member in group.runs]),  # the runs timed so far
    }


def _median(values: list) -> float | None:
    values = [v for v in values if isinstance(v, (int, float))]
    return statistics.median(values) if values else None


ROWS = [
    ("framework", "framework"),
    ("lines of framework-specific code", "code_lines"),
    ("trainer options (framework's own)", "options"),
    ("install footprint beyond the core", "install"),
    ("import time (s)", "import_s"),
    ("time to first result (s, wall)", "first_result_s"),
    ("training wall time (s)", "train_s"),
    ("peak memory (MB)", "peak_rss_mb"),
    ("model size (MB)", "model_mb"),
    ("serving latency (ms, batch 1 p50)", "latency_ms"),
    ("measured on", "model"),
    ("export formats", "exports"),
    ("manual steps", "manual_steps"),
    ("what has to be uploaded", "uploads"),
    ("cost per run", "cost"),
    ("what is lost", "lost"),
    ("pitfalls met (see the list)", "pitfalls"),
    ("opinion", "opinion"),
]


def ease_table(results: Path, dataset: Dataset | None = None) -> pd.DataFrame:
    """Aspects × frameworks. Runs are read from ``results`` on ``dataset`` (its newest quick-preset models);
    import times from RESULTS/ease.json when ``--measure`` wrote it; '—' where there is nothing to measure."""
    facts = declared_facts()
    measured = read_measured(results)
    runs = finished_runs_on(results, dataset.fingerprint) if dataset else []
    columns = {}
    for kind, fact in facts.items():
        family = families().get(kind)
        values = {**fact, "code_lines": code_lines(fact.get("code", [])), "pitfalls": len(fact.get("pitfalls", []))}
        if family and family.trainer:
            total, own = trainer_options(family.command.module)
            values["options"] = f"{total} ({own} own)"
        if fact.get("distributions"):
            footprint = install_footprint(fact["distributions"])
            values["install"] = f"{footprint['distributions']} distributions, {footprint['mb']:.0f} MB"
        values["import_s"] = measured.get("import_s", {}).get(kind)
        values.update({k: v for k, v in from_runs(runs, kind).items() if v is not None})
        values["exports"] = "; ".join(fact.get("exports", []))
        columns[family.title if family else kind] = {label: values.get(key) for label, key in ROWS}
    table = pd.DataFrame(columns)
    return table.where(table.notna(), "—")


NUMERIC_ROWS = [label for label, key in ROWS[: ROWS.index(("measured on", "model")) + 1]]


def ease_html(table: pd.DataFrame) -> str:
    """The report's section: the table and each framework's pitfalls with links."""
    import html

    parts = [
        "<h2>Ease of use</h2><p>Numbers from commands (<code>python -m benchmarks ease</code>); the text rows are "
        "each family's declared facts, opinions labelled as such.</p>",
        table.to_html(escape=True),
    ]
    for kind, fact in declared_facts().items():
        if fact.get("pitfalls"):
            family = families().get(kind)
            items = "".join(
                f"<li>{html.escape(p['what'])} → {html.escape(p['workaround'])} "
                f"(<a href='{html.escape(p['link'])}'>link</a>)</li>"
                for p in fact["pitfalls"]
            )
            parts.append(f"<h3>{html.escape(family.title if family else kind)}: pitfalls</h3><ul>{items}</ul>")
    return "".join(parts)


def ease_markdown(table: pd.DataFrame) -> str:
    """The table, then every framework's pitfalls with workaround and link (what docs and the report quote)."""
    header = "| | " + " | ".join(table.columns) + " |"
    lines = [header, "|---" * (len(table.columns) + 1) + "|"]
    for label, row in table.iterrows():
        lines.append(f"| {label} | " + " | ".join(str(v).replace("|", "/") for v in row) + " |")
    facts = declared_facts()
    for kind, fact in facts.items():
        if fact.get("pitfalls"):
            family = families().get(kind)
            lines += ["", f"**{family.title if family else kind} — pitfalls met and their workarounds**", ""]
            lines += [f"- {p['what']} → {p['workaround']} ([link]({p['link']}))" for p in fact["pitfalls"]]
    return "\n".join(lines)
