"""What a family lets the tuner vary: each knob named by the family's own CLI flag, with its range.

A family declares its space in its own ``family.py`` (``ModelFamily.search_space``), in its framework's words, and
the tuner (``benchmarks/tuning/``) turns it into Optuna distributions; nothing here imports a framework or Optuna.
A trial is then an ordinary run of the family's command with one value per knob as a flag.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from benchmarks.errors import BenchmarkError

KINDS = ("log", "float", "int", "choice")


@dataclass(frozen=True)
class Knob:
    """One tunable flag (``option`` without its dashes, e.g. ``lr``). ``log``: a float drawn on a log scale in
    [low, high]; ``float`` / ``int``: uniform in [low, high]; ``choice``: one of ``choices`` (a bool is a switch
    flag: ``--mixup`` when True, absent when False). ``why`` says what the range is for (``tune --help``).
    ``only_with`` (another knob's option and value): the knob is drawn only in trials where that knob has that value
    (WiSE-FT blends with the start, which is a model only under LP-FT's probe head); elsewhere its flag is left out."""

    option: str
    kind: str
    low: float | None = None
    high: float | None = None
    choices: tuple = ()
    why: str = ""
    only_with: tuple = ()

    def admits(self, value) -> bool:
        """Whether ``value`` is one the knob can take (a bool is not a number, and 0 is not False)."""
        if self.kind == "choice":
            return any(value == c and isinstance(value, bool) == isinstance(c, bool) for c in self.choices)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.kind == "int" and not float(value).is_integer():
            return False
        return self.low <= value <= self.high

    def describe(self) -> str:
        values = " | ".join(str(c) for c in self.choices) if self.kind == "choice" else f"{self.low:g}..{self.high:g}"
        scale = " (log)" if self.kind == "log" else ""
        condition = f" (only with --{self.only_with[0]} {self.only_with[1]})" if self.only_with else ""
        return f"--{self.option} {values}{scale}{condition}" + (f": {self.why}" if self.why else "")

    def applies(self, values: dict) -> bool:
        """Whether a trial with these other knobs' ``values`` draws this knob (see ``only_with``)."""
        return not self.only_with or values.get(self.only_with[0]) == self.only_with[1]


def log_range(option: str, low: float, high: float, why: str = "") -> Knob:
    return Knob(option, "log", low, high, why=why)


def int_range(option: str, low: int, high: int, why: str = "") -> Knob:
    return Knob(option, "int", low, high, why=why)


def choice(option: str, *choices, why: str = "", only_with: tuple = ()) -> Knob:
    return Knob(option, "choice", choices=tuple(choices), why=why, only_with=only_with)


# Both trainers' shared ``--wise-ft`` (benchmarks/training/options.py), as each fine-tuning family's space offers it
WISE_FT = choice(
    "wise-ft",
    1.0,
    0.5,
    why="0.5: end halfway between the probe and the trained model (WiSE-FT)",
    only_with=("head-init", "probe"),
)


def space_digest(described: list[str]) -> str:
    """A short name for what a study searched, from its knobs as ``Knob.describe`` gives them (and study.json's
    settings keep them): tuned models searched over different spaces are different models on the leaderboard."""
    return hashlib.sha256("\n".join(described).encode()).hexdigest()[:6]


def describe_values(params: dict) -> str:
    """A trial's knob values in one short line (floats to 3 significant digits), for progress lines and tables."""
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def parse_fixed(space: tuple[Knob, ...], assignments: list[str], family: str) -> dict:
    """``--fix lr=1e-3 epochs=1``: knobs taken out of the search at one value, typed like the knob."""
    knobs = {knob.option: knob for knob in space}
    fixed: dict = {}
    for assignment in assignments:
        name, _, text = assignment.partition("=")
        knob = knobs.get(name.strip())
        if knob is None or not text:
            raise BenchmarkError(
                f"--fix {assignment!r}: give NAME=VALUE with NAME one of {family}'s knobs: {', '.join(knobs)}"
            )
        fixed[knob.option] = _typed(knob, text.strip(), assignment)
    return fixed


def _typed(knob: Knob, text: str, assignment: str):
    try:
        if knob.kind == "int":
            return int(text)
        if knob.kind in ("log", "float"):
            return float(text)
    except ValueError:
        raise BenchmarkError(f"--fix {assignment!r}: {knob.option} takes a number") from None
    by_text = {str(c).lower(): c for c in knob.choices}
    if text.lower() not in by_text:
        raise BenchmarkError(f"--fix {assignment!r}: {knob.option} is one of {', '.join(map(str, knob.choices))}")
    return by_text[text.lower()]
