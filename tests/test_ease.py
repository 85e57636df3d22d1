"""Ease of use, measured: counts from the source, sizes from the installed packages, figures from the runs."""

import json

from benchmarks.cli import main as cli
from benchmarks.data.dataset import load_dataset
from benchmarks.models import ease

KINDS = {"fastai", "keras", "teachable_machine", "vertex_automl", "vision_api", "roboflow"}


def test_code_lines_leave_out_blanks_comments_and_docstrings():
    source = (
        '"""Module doc."""\n\nimport os  # why\n\n\ndef f(x):\n    """Doc\n    on two lines."""\n'
        "    # a comment\n    return (x +\n            1)\n"
    )
    assert ease._code_lines(source) == 4  # import, def, and the return spread over two lines


def test_every_framework_declares_its_facts_and_each_pitfall_has_a_workaround_and_a_link():
    facts = ease.declared_facts()
    assert KINDS <= set(facts)
    for kind in KINDS:
        assert all(facts[kind].get(k) for k in ("framework", "code", "manual_steps", "uploads", "cost", "lost"))
        assert facts[kind]["opinion"].startswith("Opinion:")
        for pitfall in facts[kind].get("pitfalls", []):
            assert pitfall["what"] and pitfall["workaround"] and pitfall["link"].startswith("https://")


def test_the_table_counts_code_options_install_size_and_reads_the_runs(
    fastai_run, keras_run, tiny_scenes, tiny_results
):
    table = ease.ease_table(tiny_results, load_dataset(tiny_scenes))
    assert {"fastai", "Keras", "Teachable Machine", "Vertex AI AutoML", "Cloud Vision API", "Roboflow"} <= set(table)
    for name in ("fastai", "Keras"):
        column = table[name]
        assert column["lines of framework-specific code"] > 100
        total, own = column["trainer options (framework's own)"].split(" (")
        assert int(total) > int(own.split()[0]) > 0
        assert column["install footprint beyond the core"].endswith("MB")
        assert column["peak memory (MB)"] > 100 and column["model size (MB)"] > 1
        assert column["training wall time (s)"] > 0 and " run" in column["measured on"]
    assert table["Roboflow"]["install footprint beyond the core"] == "—"


def test_import_times_are_measured_in_fresh_interpreters_and_kept(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(ease, "declared_facts", lambda: {"fastai": {"import": "json", "code": ["fastai_model"]}})
    assert cli(["ease", "--results", str(tmp_path), "--measure"]) == 0
    saved = json.loads((tmp_path / "ease.json").read_text())
    assert 0 <= saved["import_s"]["fastai"] < 5 and saved["measured"]
    assert "import time (s)" in capsys.readouterr().out


def test_markdown_lists_pitfalls_with_links(tmp_path, capsys):
    assert cli(["ease", "--results", str(tmp_path), "--markdown"]) == 0
    out = capsys.readouterr().out
    assert "keras-team/keras/issues/20285" in out and "| lines of framework-specific code |" in out
