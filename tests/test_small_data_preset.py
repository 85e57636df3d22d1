"""Which preset a dataset's size calls for: a study's default start and the note a "quick" run prints on small
data (benchmarks/training/options.py)."""

import dataclasses

from benchmarks.data.dataset import load_dataset
from benchmarks.models.registry import family_of
from benchmarks.training.options import SMALL_DATA_TRAIN_IMAGES, preset_for, small_data_note
from benchmarks.tuning.settings import default_preset
from keras_model.config import make_config


def test_small_training_splits_get_the_small_preset_where_a_family_has_one():
    presets = ("full", "quick", "small")
    assert preset_for(300, presets) == "small"
    assert preset_for(SMALL_DATA_TRAIN_IMAGES, presets) == "quick"
    assert preset_for(300, ("full", "quick")) == "quick"  # a family without "small" keeps its quick preset


def test_a_quick_run_on_small_data_names_the_small_preset_once():
    quick = make_config("quick")
    note = small_data_note(quick, 300)
    assert note.startswith("note: 300 training images: --preset small")
    assert small_data_note(quick, 2000) is None
    assert small_data_note(make_config("small"), 300) is None
    assert small_data_note(dataclasses.replace(quick, preset=""), 300) is None  # no preset named: nothing to say


def test_a_study_on_a_small_dataset_starts_from_small_and_says_why(tiny_scenes, capsys):
    dataset = load_dataset(tiny_scenes)
    assert default_preset(family_of("keras"), dataset) == "small"
    assert f"training images, under {SMALL_DATA_TRAIN_IMAGES}" in capsys.readouterr().out
    assert default_preset(family_of("linear_probe"), dataset) is None
