"""The summary table's columns: held-out figures shown when a job has them, `--metrics`."""

import pytest

from headbayes.core.errors import ConfigError
from headbayes.report.summarize import checked_metrics, markdown_table, table_columns

ROWS = [
    {"job": "0", "seed": "0", "status": "ok", "sampled": 17, "test_rmse": 0.5, "test_nll": 1.1,
     "test_coverage_90": 0.9, "rhat_max": 1.0, "wall_s": 3.0, "verdict": "ok"},
    {"job": "1", "seed": "1", "status": "ok", "sampled": 17, "test_rmse": 0.6, "test_nll": 1.2,
     "test_coverage_90": 0.85, "rhat_max": 1.1, "wall_s": 3.5, "verdict": "WARNING: x",
     "groups.head.rhat_max": 1.2},
]


def test_held_out_figures_are_columns_when_a_job_has_them():
    columns = table_columns(ROWS)
    assert columns[:3] == ["job", "seed", "status"]
    assert {"test_rmse", "test_nll", "test_coverage_90"} <= set(columns)
    assert "accuracy" not in columns and "rel_l2" not in columns  # no job has them
    classifiers = [{**row, "accuracy": 0.9, "ece": 0.05} for row in ROWS]
    assert {"accuracy", "ece"} <= set(table_columns(classifiers))


def test_metrics_choose_the_columns_after_the_overrides():
    keys = checked_metrics("test_nll, wall_s,groups.head.rhat_max", ROWS)
    assert table_columns(ROWS, keys) == ["job", "seed", "status", "test_nll", "wall_s",
                                         "groups.head.rhat_max"]
    table = markdown_table(ROWS, str, keys).splitlines()
    assert table[0] == "| job | seed | status | test_nll | wall_s | groups.head.rhat_max |"
    assert table[3] == "| 1 | 1 | ok | 1.2 | 3.5 | 1.2 |"


@pytest.mark.parametrize("text", ["test_nl", "", "test_nll,nope"])
def test_an_unknown_metric_names_the_choices(text):
    with pytest.raises(ConfigError, match=r"--metrics: unknown key\(s\) .*; choose from "
                                          r"status, sampled, .*test_nll"):
        checked_metrics(text, ROWS)
