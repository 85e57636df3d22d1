"""Benchmark grids: a tiny grid on a real local Ray cluster, the same cells without Ray giving the same metrics,
resuming, failed cells recorded without stopping the others, and specs refused in one line."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.cli import main as cli
from benchmarks.runner.spec import read_spec

VENV_BIN = Path(sys.executable).parent
TINY_FASTAI = "{img-size = 64, epochs = 1, freeze-epochs = 0, bs = 8, lr = 0.001}"


def write_spec(path: Path, dataset: Path, seeds: list[int], models: str, name: str = "tiny") -> Path:
    path.write_text(
        f'name = "{name}"\nseeds = {seeds}\n\n[[datasets]]\npath = "{dataset}"\n\n{models}', encoding="utf-8"
    )
    return path


TWO_MODELS = f"""
[[models]]
family = "fastai"
backbones = ["lite0"]
options = {TINY_FASTAI}

[[models]]
family = "teachable_machine_replica"
options = {{epochs = 2}}
"""


def grid(*args: str | Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", "grid", *map(str, args)], capture_output=True, text=True, env=env
    )


def ledger(results: Path, name: str = "tiny") -> dict:
    return json.loads((results / "grids" / name / "cells.json").read_text())["cells"]


def macro_auc(results: Path, run_id: str) -> float:
    return json.loads((results / run_id / "metrics.json").read_text())["overall"]["macro_roc_auc"]


def test_tiny_grid_on_a_local_ray_cluster_matches_the_same_cells_run_locally(tiny_scenes, tmp_path, ray_cluster):
    address, env = ray_cluster
    spec = write_spec(tmp_path / "tiny.toml", tiny_scenes, [0, 1], TWO_MODELS)
    on_ray = grid(spec, "--results", tmp_path / "ray", "--executor", "ray", "--address", address, env=env)
    assert on_ray.returncode == 0, on_ray.stderr[-2000:]
    cells = ledger(tmp_path / "ray")
    assert len(cells) == 4 and {e["status"] for e in cells.values()} == {"done"}
    summary = (tmp_path / "ray" / "grids" / "tiny" / "summary.md").read_text()
    assert "| fastai·lite0 | fastai | 2 |" in summary and "P(A > B)" in summary

    # the same seed-0 cells without Ray: identical metrics (the cell's thread count travels with it)
    spec = write_spec(tmp_path / "seed0.toml", tiny_scenes, [0], TWO_MODELS)
    local = grid(spec, "--results", tmp_path / "local")
    assert local.returncode == 0, local.stderr[-2000:]
    for key, entry in ledger(tmp_path / "local").items():
        assert macro_auc(tmp_path / "local", entry["run"]) == macro_auc(tmp_path / "ray", cells[key]["run"]), key


def test_grid_resumes_records_a_failed_cell_and_goes_on(tiny_scenes, tmp_path):
    models = '[[models]]\nfamily = "prior"\n\n[[models]]\nfamily = "linear_probe"\noptions = {no-such-flag = 1}\n'
    spec = write_spec(tmp_path / "g.toml", tiny_scenes, [0], models, name="g")
    first = grid(spec, "--results", tmp_path / "r")
    assert first.returncode == 1 and "1 cell(s) failed" in first.stderr
    cells = ledger(tmp_path / "r", "g")
    prior = cells[f"{tiny_scenes.name}/prior"]
    probe = cells[f"{tiny_scenes.name}/linear_probe/no-such-flag=1"]
    assert prior["status"] == "done" and (tmp_path / "r" / prior["run"] / "run.json").is_file()
    assert probe["status"] == "failed" and "unrecognized arguments: --no-such-flag 1" in probe["error"]

    dry = grid(spec, "--results", tmp_path / "r", "--dry-run")
    assert "2 cells, 1 finished, 1 to run" in dry.stdout and "linear-probe" in dry.stdout
    again = grid(spec, "--results", tmp_path / "r")
    assert ledger(tmp_path / "r", "g")[f"{tiny_scenes.name}/prior"] == prior  # finished: not run again
    assert again.returncode == 1


def test_a_finished_cell_is_rechecked_and_trains_again_when_its_settings_changed_since(tiny_scenes, tmp_path):
    """The ledger names a cell by its preset's name; a finished cell's command runs again with --skip-existing, so
    a run made with other settings than the command's today (a preset changed in an upgrade) is not kept."""
    spec = write_spec(tmp_path / "g.toml", tiny_scenes, [0], '[[models]]\nfamily = "linear_probe"\n', name="g")
    key = f"{tiny_scenes.name}/linear_probe"
    assert grid(spec, "--results", tmp_path / "r").returncode == 0
    first = ledger(tmp_path / "r", "g")[key]
    log = (Path(first["log"])).read_text()

    again = grid(spec, "--results", tmp_path / "r")
    assert again.returncode == 0 and "1 finished cell(s) re-checked" in again.stdout
    assert ledger(tmp_path / "r", "g")[key] == first  # the same settings: the same run, its entry untouched
    assert Path(first["log"]).read_text().startswith(log)  # the training log is kept, the re-check appended

    run_json = tmp_path / "r" / first["run"] / "run.json"
    info = json.loads(run_json.read_text())
    info["params"]["c_grid"] = [1.0]  # as if made by an older release whose settings differ from today's
    run_json.write_text(json.dumps(info))
    assert grid(spec, "--results", tmp_path / "r").returncode == 0
    now = ledger(tmp_path / "r", "g")[key]
    assert now["status"] == "done" and now["run"] != first["run"]


def test_a_cell_gets_the_run_its_command_made_not_a_newer_one_that_shares_its_options(tiny_scenes, tmp_path):
    """The default-size probe cell and a 64-px probe cell: rerun with the ledger lost, each command reuses its own
    run, and the cell without the option must not be given the newer 64-px run that also matches it."""
    models = '[[models]]\nfamily = "linear_probe"\n\n[[models]]\nfamily = "linear_probe"\noptions = {img-size = 64}\n'
    spec = write_spec(tmp_path / "g.toml", tiny_scenes, [0], models, name="g")
    assert grid(spec, "--results", tmp_path / "r").returncode == 0
    first = ledger(tmp_path / "r", "g")
    (tmp_path / "r" / "grids" / "g" / "cells.json").unlink()
    assert grid(spec, "--results", tmp_path / "r").returncode == 0
    again = ledger(tmp_path / "r", "g")
    default, small = f"{tiny_scenes.name}/linear_probe", f"{tiny_scenes.name}/linear_probe/img-size=64"
    assert again[default]["run"] == first[default]["run"] != again[small]["run"] == first[small]["run"]


@pytest.mark.parametrize(
    "text, message",
    [
        ('seeds = [0]\n[[datasets]]\npath = "{d}"\n[[models]]\nfamily = "vision_api"\n', "cannot run in a grid"),
        ('seeds = [0, 0]\n[[datasets]]\npath = "{d}"\n[[models]]\nfamily = "prior"\n', "repeat a seed"),
        ('seeds = "0"\n[[datasets]]\npath = "{d}"\n[[models]]\nfamily = "prior"\n', "seeds must be a list"),
        ('[[datasets]]\npath = "{d}"\n[[models]]\nfamily = "prior"\ncolour = 1\n', "unknown key 'colour'"),
        ('[[datasets]]\npath = "{d}/missing"\n[[models]]\nfamily = "prior"\n', "not found; create it"),
        ('[[datasets]]\npath = "{d}"\n[[models]]\nfamily = "fastai"\nbackbones = ["resnet"]\n', "backbones must"),
        ('[[datasets]]\npath = "{d}"\n[[models]]\nfamily = "prior"\nbackbones = ["lite0"]\n', "no backbone choice"),
        ('[[datasets]]\npath = "{d}"\n[[models]]\nfamily = "fastai"\noptions = {{seed = 1}}\n', "their own keys"),
        ('[[datasets]]\npath = "{d}"\n[[models]]\nfamily = "prior"\n[[models]]\nfamily = "prior"\n', "listed twice"),
        ("[[datasets]\n", "not valid TOML"),
        ('[[datasets]]\npath = "{d}"\n', "needs at least one [[models]] table"),
    ],
)
def test_bad_specs_are_refused_in_one_line(tiny_scenes, tmp_path, capsys, text, message):
    spec = tmp_path / "bad.toml"
    spec.write_text(text.format(d=tiny_scenes), encoding="utf-8")
    assert cli(["grid", str(spec), "--results", str(tmp_path / "r"), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and str(spec) in err


def test_a_fastai_cell_given_several_gpus_trains_on_all_of_them_one_process_each(tiny_scenes, tmp_path):
    """fastai shares a cell's GPUs through Accelerate (one process per GPU, launched by torchrun); Keras'
    MirroredStrategy and the other families use what they are given from one process."""
    from benchmarks.runner.spec import read_spec

    models = TWO_MODELS.replace('family = "fastai"', 'family = "fastai"\ngpus = 2')
    models = models.replace('family = "teachable_machine_replica"', 'family = "teachable_machine_replica"\ngpus = 2')
    cells = {
        cell.family: cell for cell in read_spec(write_spec(tmp_path / "gpus.toml", tiny_scenes, [0], models)).cells
    }
    launch = ["torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "fastai_model.train"]
    assert cells["fastai"].argv(tmp_path)[:6] == launch
    assert cells["teachable_machine_replica"].argv(tmp_path)[0] == "tm_replica"


SHIPPED_GRIDS = sorted((Path(__file__).parents[1] / "benchmarks" / "grids").glob("*.toml"))
PARSER_MODULES = {"benchmarks": "benchmarks.cli", "tm_replica": "tm_replica.__main__"}  # where `python -m X` parses


@pytest.mark.parametrize("spec", SHIPPED_GRIDS, ids=lambda path: path.name)
def test_every_shipped_grid_reads_and_each_cell_is_a_command_its_family_accepts(spec, tmp_path):
    """A grid that runs for an hour must not fail at its last cell on a misspelt option: each cell's command line
    goes through its family's own argument parser (an unknown flag or preset exits)."""
    cells = read_spec(spec).cells
    assert cells
    for cell in cells:
        module, *args = cell.argv(tmp_path)
        parser = importlib.import_module(PARSER_MODULES.get(module, module)).build_parser()
        parser.parse_args(args)
