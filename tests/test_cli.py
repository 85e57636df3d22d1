import subprocess
import sys

import pytest


def _cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


def test_help_lists_every_command():
    out = _cli("--help").stdout
    for command in ("build-default", "import", "eda", "baseline", "evaluate", "compare", "leaderboard"):
        assert command in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["eda", "/no/such/dataset"], "/no/such/dataset: dataset folder not found"),
        (["evaluate", "/no/such/run"], "/no/such/run: run folder not found"),
        (["baseline", "linear-probe", "/no/such/dataset", "--backbone", "lite0"], "dataset folder not found"),
        (["build-default", "/tmp/x", "--stamps", "/no/stamps"], "apt-get install tuxpaint-stamps-default"),
    ],
)
def test_bad_input_is_one_line_without_traceback(args, message):
    result = _cli(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_end_to_end_prior_leaderboard_and_compare(tmp_path, tiny_scenes):
    results = tmp_path / "results"
    assert _cli("baseline", "prior", str(tiny_scenes), "--results", str(results)).returncode == 0
    again = _cli("baseline", "prior", str(tiny_scenes), "--results", str(results), "--skip-existing")
    assert "reusing" in again.stdout
    board = _cli("leaderboard", "--dataset", str(tiny_scenes), "--results", str(results))
    assert board.returncode == 0 and "prior" in board.stdout and "0.500" in board.stdout
    run = next(results.iterdir())
    compared = _cli("compare", str(run), str(run))
    assert "no significant difference" in compared.stdout
    by_id = _cli("compare", run.name, run.name, "--results", str(results))  # as the leaderboard prints it
    assert by_id.returncode == 0 and "no significant difference" in by_id.stdout


def test_the_imgbench_command_runs_the_same_verbs(tmp_path):
    """pyproject's [project.scripts]: ``imgbench`` is ``python -m benchmarks`` under its own name."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    command = shutil.which("imgbench") or str(Path(sys.executable).parent / "imgbench")
    done = subprocess.run([command, "leaderboard", "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("usage: imgbench leaderboard")
    missing = subprocess.run([command, "eda", str(tmp_path / "nowhere")], capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
