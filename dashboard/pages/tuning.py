"""Tuning page: each family's expected best macro AUC vs number of trials, the budget verdicts, and every trial."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from benchmarks.data.dataset import Dataset
from benchmarks.evaluation.charts import expected_max_overlay
from benchmarks.tuning.curves import BAND_RESAMPLES
from benchmarks.tuning.records import (
    band_note,
    best_trial_lead,
    describe_lead,
    family_curves,
    read_studies,
    titled_studies,
    verdicts,
)
from benchmarks.tuning.valid_resamples import ValidResampler


def render(dataset: Dataset, results: Path) -> None:
    st.header("Tuning: equal budgets, and how the verdict depends on them")
    st.caption(
        "Each family tuned on this dataset by `python -m benchmarks tune` with a declared budget. The curve: the best "
        "valid macro AUC a family is expected to reach with k trials like these (Dodge et al. 2019, unbiased "
        "estimator; exact for random search, TPE's later trials learn from earlier ones); dotted: the test macro AUC "
        "of the trial valid would pick. Selection never reads test."
    )
    studies, skipped = read_studies(results, dataset.fingerprint)
    for line in skipped:
        st.warning(line)
    curves = family_curves(studies, dataset)
    if not curves:
        st.info(
            "No tuning study on this dataset yet. Run, with the same budget for each family: `python -m benchmarks "
            f"tune {dataset.root} --family fastai --trials 16` (and `--family keras`, `--family linear_probe`)."
        )
        return
    st.plotly_chart(expected_max_overlay({c.title: c.curves for c in curves}), width="stretch")
    st.caption(
        f"Bands: {band_note(curves)}. A verdict names a leader only where the band of the paired difference excludes 0."
    )
    for line in verdicts(curves):
        st.markdown(f"- {line}")
    budgets = {c.title: c.budget for c in curves}
    if len(set(budgets.values())) > 1:
        st.warning(f"the families were not given the same budget: {budgets}; compare them at equal k only")
    resampler = ValidResampler(BAND_RESAMPLES, dataset)
    for title, study in titled_studies(studies, curves):
        record = study.record
        chosen = record.get("chosen")
        souped = set((record.get("soup") or {}).get("trials", []))  # tune --soup: the trials averaged into one model
        with st.expander(
            f"{title} · seed {record['settings']['seed']} · {record['spent']['trials']} trials "
            f"({record['budget']['described']}) · {record['spent']['wall_s']:.0f} s"
        ):
            rows = [
                {
                    "trial": t["number"],
                    "state": t["state"]
                    + (" ← chosen" if t["number"] == chosen else "")
                    + (" · in the soup" if t["number"] in souped else ""),
                    "start": "preset" if t.get("start") else "",
                    "valid macro AUC": t.get("valid"),
                    "test macro AUC": t.get("test"),
                    "seconds": t.get("seconds"),
                    **{f"--{k}": v for k, v in t["params"].items()},
                }
                for t in record["trials"]
            ]
            st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
            st.caption(
                f"study folder {study.path.parent}; promoted run: {record.get('promoted') or 'not yet'}; machine "
                f"{record.get('machine', {}).get('cpu', '?')}; tuner overhead {record.get('tuner_overhead')}; the best "
                "trial besides the preset: its lead over it on valid / the lead the preset rule needed from it "
                f'{describe_lead(best_trial_lead(study, resampler))} (docs/tuning.md, "Small valid splits")'
            )
