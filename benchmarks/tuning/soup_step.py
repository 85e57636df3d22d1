"""``tune --soup``: after the study, the chosen trial's weights averaged with the other trials' where that does not
lower valid macro AUC (a greedy model soup, benchmarks/training/soup.py, run by the family's own CLI). A study's
trials all start from the same pretrained body, so the search's by-products become one model at no training cost.
The soup (of one, where no other trial joined) is what the study promotes; a resumed study finds the soup it made."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from benchmarks.errors import BenchmarkError
from benchmarks.evaluation.results import RUN_REPORT_ENV, load_run
from benchmarks.runner.cells import child_environment, last_line

from .selection import Choice
from .settings import StudySettings

SOUP_ATTR = "soup"  # the study's user attribute: the soup made for a chosen trial and its candidates


def candidates(complete: list, chosen: Choice, trials: Path) -> list:
    """The chosen trial first, then every other complete trial whose run is still in ``trials``, best valid macro
    AUC first (the earliest on a tie): the order greedy soup tries them in."""
    kept = [t for t in complete if t.user_attrs.get("run") and (trials / t.user_attrs["run"]).is_dir()]
    others = [t for t in kept if t.number != chosen.number]
    return [chosen.trial, *sorted(others, key=lambda t: (-t.value, t.number))]


def study_soup(study, folder: Path, settings: StudySettings, complete: list, chosen: Choice) -> dict:
    """The soup of this study's chosen trial: ``{"for": [trial numbers tried], "run": its run's name, "trials":
    [numbers that joined]}``, made once (a resumed study with the same trials reuses it)."""
    tried = candidates(complete, chosen, folder / "trials")
    numbers = [t.number for t in tried]
    made = study.user_attrs.get(SOUP_ATTR)
    if made and made.get("for") == numbers and made.get("run") and (folder / "trials" / made["run"]).is_dir():
        return made
    logs = folder / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log, report = logs / "soup.log", logs / "soup.run"
    report.unlink(missing_ok=True)
    runs = [str(folder / "trials" / t.user_attrs["run"]) for t in tried]
    command = [sys.executable, "-m", settings.family.souper, "--dataset", str(settings.dataset.root)]
    command += ["--results", str(folder / "trials"), *runs]
    print(f"soup: trying {len(tried) - 1} other trials with trial {chosen.number}'s weights (log: {log})", flush=True)
    with open(log, "a", encoding="utf-8") as out:
        out.write("$ " + " ".join(command[1:]) + "\n")
        out.flush()
        env = {**child_environment(settings.cpus), RUN_REPORT_ENV: str(report.resolve())}
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    code = done.returncode
    if code != 0:
        raise BenchmarkError(f"{folder}: the soup failed: {last_line(log) or f'exit code {code}'} (log: {log})")
    if not report.is_file():
        raise BenchmarkError(f"{folder}: the soup finished without naming its run (log: {log})")
    name = report.read_text().strip()
    by_run = {t.user_attrs["run"]: t.number for t in tried}
    joined = [by_run[r] for r in load_run(folder / "trials" / name).info["soup"]["ingredients"]]
    made = {"for": numbers, "run": name, "trials": joined}
    study.set_user_attr(SOUP_ATTR, made)
    if len(joined) > 1:
        print(f"soup: trials {', '.join(map(str, joined))} averaged into {name}", flush=True)
    else:
        print(f"soup: no other trial joined; {name} is trial {chosen.number}'s model alone", flush=True)
    return made
