"""Typed metric records and the metrics.jsonl schema: pinned columns, old files load, no hand keys."""
import dataclasses
import json

import numpy as np
import pytest

from collapse_diffusion.core.config import EvalConfig
from collapse_diffusion.data.images import make_set
from collapse_diffusion.loop import rows
from collapse_diffusion.measure.evaluate import CycleMetrics, evaluate_sets, summary_lines

# the documented metrics.jsonl schema (README "Results files"); a change here is a change for every reader
PINNED = [
    "seed", "n", "steps", "preset", "paradigm", "arm", "selector", "space", "cycle",
    "copy_share", "copy_ci95", "copy_share_real", "copy_real_ci95", "duplicate_share_geometric",
    "memorization_rate", "memorization_ci95", "memorization_rate_lineage", "memorization_lineage_ci95",
    "relative_copy_share", "relative_copy_ci95", "relative_nn_median", "duplicate_share", "generalization_score",
    "exact_copies", "n_generated", "memorization_rate_real", "memorization_real_ci95", "n_real",
    "n_train", "entropy_train", "trace_cov_train", "mean_nn_train", "real_share", "entropy_generated",
    "trace_cov_generated", "fd", "fd_label", "fd_ci95", "fd_n_real", "fd_n_generated", "classifier_accuracy",
    "precision", "recall", "memorizer_share", "memorizer_ci95", "memorizer_ratio_median", "n_probed",
    "entropy_space",
    "memorizer_share_frozen", "memorizer_frozen_ci95", "probe_yardstick", "probe_draws",
    "membership_auc", "membership_auc_ci95", "membership_tpr_1fpr", "membership_auc_by_level",
    "membership_twin_share", "membership_auc_untwinned", "membership_n_members", "membership_n_nonmembers",
    "membership_reason",
    "copy_recall", "copy_recall_ci95", "copy_share_calibrated", "copy_share_calibrated_ci95", "near_share",
    "near_ci95", "near_distance", "copy_recall_model", "copy_recall_fixed", "copy_calibration_reason",
    "selection_pool", "selection_size", "pool_generated", "pool_real", "memfilter_dropped", "verify_dropped",
    "detector_recall", "detector_false_positive", "topped_up", "held_out", "real_anchors",
]


def test_schema_is_pinned():
    assert sorted(c.name for c in rows.COLUMNS) == sorted(PINNED)
    assert len({c.name for c in rows.COLUMNS}) == len(rows.COLUMNS)
    # every interval and sample-count column a metric points to exists
    for c in rows.COLUMNS:
        assert (c.ci is None or c.ci in rows.BY_NAME) and all(k in rows.BY_NAME for k in c.n), c


def small_metrics(seed=0):
    rng = np.random.default_rng(seed)
    train = make_set(rng.integers(0, 256, (30, 1, 4, 4)).astype(np.uint8))
    gen = make_set(np.concatenate([train.images[:10], rng.integers(0, 256, (30, 1, 4, 4)).astype(np.uint8)]), cycle=1)
    return evaluate_sets(gen, train, train, EvalConfig(bootstrap=0), seed)


def test_row_from_records_and_typos_fail_at_write_time():
    metrics, _ = small_metrics()
    ctx = dict(seed=0, n=30, steps=1, preset="p", paradigm="replace", arm="vanilla", selector="random",
               space="pixel", cycle=1)
    row = rows.cycle_row(ctx, metrics)
    assert list(row) == [c.name for c in rows.COLUMNS]
    assert row["memorization_rate"] == metrics.vs_train.memorization_rate == 10 / 40
    assert row["memorization_ci95"] == list(metrics.vs_train.memorization_ci95)
    assert row["n_real"] == 30 and row["entropy_train"] == metrics.train_set.entropy.nats
    assert row["fd"] is None  # no extractor: no FD, no stand-in
    with pytest.raises(TypeError):
        rows.cycle_row({**ctx, "memorisation_rate": 0.1}, metrics)


def test_metrics_json_round_trip_and_old_files_load():
    metrics, _ = small_metrics()
    d = json.loads(json.dumps(metrics.to_dict()))
    assert CycleMetrics.from_dict(d) == metrics
    # a metrics.json written before the lineage-aware rule and the relative measure existed
    for k in ("memorization_rate_lineage", "memorization_lineage_ci95", "relative_copy_share", "relative_copy_ci95",
              "relative_nn_median", "duplicate_share"):
        del d["vs_train"][k]
    old = CycleMetrics.from_dict(d)
    assert old.vs_train.memorization_rate_lineage is None and old.vs_train.memorization_rate == 0.25
    ctx = {c.name: 0 for c in rows.CONTEXT}
    assert rows.cycle_row(ctx, old)["memorization_rate_lineage"] is None
    # a metrics.jsonl row from before a column existed reads with that column None
    assert rows.normalize({"cycle": 2})["classifier_accuracy"] is None


def test_summary_lines_show_every_metric_with_interval_and_count():
    metrics, _ = small_metrics()
    text = "\n".join(summary_lines(metrics))
    for f in dataclasses.fields(metrics.vs_train):
        if "ci" in f.metadata and f.metadata.get("label") and not f.metadata.get("detail"):
            assert f.metadata["label"] in text
    assert "memorization rate (1/3 rule) 0.250 [" in text and "(n generated=40, n reference=30)" in text
