"""Leaderboard page: the ranked runs, hidden and tagged runs, seeds pooled, and paired comparisons."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

import benchmarks.models.torch_first  # noqa: F401, I001  (PyTorch before TensorFlow in one process)
from benchmarks.data.dataset import Dataset
from benchmarks.errors import BenchmarkError
from benchmarks.evaluation import charts
from benchmarks.evaluation.groups import params_diff
from benchmarks.evaluation.leaderboard import readable_groups, table_notes
from benchmarks.evaluation.results import load_run
from dashboard.caching import cached_seed_groups
from dashboard.logic import annotations, leaderboard


def render(dataset: Dataset, results: Path) -> None:
    st.header("Leaderboard (test split, thresholds tuned on valid)")
    every_run = leaderboard.leaderboard_table(results, dataset)
    if every_run.empty:
        st.info(f"no runs on this dataset in {results}/ yet — `make demo` trains some")
        return
    kept, problem = annotations.load_annotations(results)
    if problem:
        st.warning(problem)
    show_hidden = bool(kept["hidden"]) and st.checkbox(f"show the {len(kept['hidden'])} hidden run(s)")
    table = annotations.annotated(every_run, kept, show_hidden)
    if table.empty:
        st.info("every run here is hidden: tick 'show the hidden runs' above, or unhide some below")
        edit_annotations(every_run, kept, results, expanded=True)
        return
    st.dataframe(
        leaderboard.readable_leaderboard(table),
        width="stretch",
        hide_index=True,
        column_config={
            **leaderboard.COLUMN_TITLES,
            **{
                c: st.column_config.NumberColumn(leaderboard.COLUMN_TITLES[c], format="%.3f")
                for c in leaderboard.SCORE_COLUMNS
            },
            # at most ~200 px (the full name on hover), so a phone's width still shows macro AUC and its CI beside it
            "name": st.column_config.TextColumn(leaderboard.COLUMN_TITLES["name"], width="medium"),
            "latency_ms": st.column_config.NumberColumn(
                "latency ms", help="served model, one image per call, median after warm-up (docs/evaluation.md)"
            ),
            "images_per_s": st.column_config.NumberColumn("images/s", help="served model, batches of 32"),
        },
    )
    for note in table_notes(table):
        st.caption(note)
    st.plotly_chart(charts.leaderboard_bars(table), width="stretch")
    if leaderboard.has_latency(table):
        st.plotly_chart(charts.quality_latency_size(table), width="stretch")
    else:  # an empty chart would only show axes
        st.caption("quality vs latency: no run here has a latency yet (see above)")
    edit_annotations(every_run, kept, results)
    with st.expander("training curves (per epoch, from each run's history)"):
        histories = leaderboard.training_histories(results, table)
        if histories:
            picked = st.multiselect("runs", list(histories), default=list(histories)[:3])
            st.plotly_chart(charts.training_curves({name: histories[name] for name in picked}), width="stretch")
        else:
            st.write("no run here records per-epoch history (trainers do; baselines and adapters do not)")
    groups = cached_seed_groups(str(results), str(dataset.root), leaderboard.results_signature(results))
    if len(groups):
        st.subheader("Models over seeds")
        st.caption(
            "mean ± sd over seeds [95% CI over seeds and test images]; one row per family, backbone and settings"
        )
        st.dataframe(readable_groups(groups), width="stretch", hide_index=True)
    st.subheader("Is A really better than B? (paired bootstrap on the same test images)")
    by_model = len(groups) and st.radio("compare", ["models (seeds pooled)", "runs"], horizontal=True).startswith("m")
    names = list(groups["model"] if by_model else table["run"])
    shown_name = (lambda n: n) if by_model else dict(zip(table["run"], table["name"])).get
    a, b = st.columns(2)
    choice_a = a.selectbox("A", names, index=0, format_func=shown_name)
    choice_b = b.selectbox("B", names, index=min(1, len(names) - 1), format_func=shown_name)
    if choice_a == choice_b:
        st.info("choose two different ones to compare")
        return
    if not by_model:
        differences = params_diff(load_run(results / choice_a), load_run(results / choice_b))
        st.caption(
            "how A and B differ: "
            + ("; ".join(f"{d['setting']} {d['A']} → {d['B']}" for d in differences) or "nothing but the run")
        )
    if st.button("compare"):
        from benchmarks.evaluation.groups import Group, compare_groups, find_group, group_runs

        try:
            with st.spinner("1,000 paired bootstrap resamples of the test images…"):
                if by_model:
                    pool = group_runs(leaderboard.runs_on(results, dataset))
                    chosen = find_group(pool, choice_a), find_group(pool, choice_b)
                else:
                    chosen = tuple(Group(r, [load_run(results / r)]) for r in (choice_a, choice_b))
                result = compare_groups(*chosen)
        except BenchmarkError as exc:
            st.error(str(exc))
            return
        for metric, entry in result["metrics"].items():
            ci = entry["ci"]
            ci_text = f"[{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else "undefined"
            p_better = f", P(A > B) over seed pairs {entry['p_a_better']:.2f}" if "p_a_better" in entry else ""
            difference = "undefined" if entry["difference"] is None else f"{entry['difference']:+.3f}"
            st.write(f"**{metric}**: A − B {difference}, 95% CI {ci_text}{p_better} → {entry['verdict']}")


def edit_annotations(table, kept: dict, results: Path, expanded: bool = False) -> None:
    """Hide runs from every view of the leaderboard, or tag them; saved under the results folder."""
    names = dict(zip(table["run"], table["name"]))
    with st.expander("hide or tag runs (kept in the results folder for every visitor)", expanded=expanded):
        hidden = st.multiselect(
            "hidden runs", list(names), default=[r for r in kept["hidden"] if r in names], format_func=names.get
        )
        left, right = st.columns([1, 2])
        run = left.selectbox("tag a run", list(names), format_func=names.get)
        tag = right.text_input("tag (empty removes it)", kept["tags"].get(run, ""), max_chars=60)
        if st.button("save"):
            kept_elsewhere = [r for r in kept["hidden"] if r not in names]  # other datasets' runs stay hidden
            annotations.save_annotations(results, hidden + kept_elsewhere, {**kept["tags"], run: tag.strip()})
            st.rerun()
