"""Datasets: synthetic targets, files, splits, standardisation and every bad-file case."""

import re

import numpy as np
import pytest

import headbayes
from headbayes.datasets.files import FileOptions
from headbayes.datasets.synthetic import CurveOptions, Friedman1Options, GapOptions
from headbayes.datasets import make_dataset
from headbayes.core.errors import ConfigError


def test_gap_has_no_training_points_in_the_hole():
    data = make_dataset(GapOptions(n_train=40, gap_min=-0.3, gap_max=0.3, n_test=50))
    x = data.x_train[:, 0]
    assert not np.any((x > -0.3) & (x < 0.3)) and len(x) < 40
    assert data.gap == (-0.3, 0.3)
    assert data.x_test.shape == (50, 1) and data.y_test.shape == (50, 1)


def test_seed_training_data_unchanged_by_a_test_split():
    base = make_dataset(CurveOptions())
    split = make_dataset(CurveOptions(n_test=100))
    np.testing.assert_array_equal(base.y_train, split.y_train)
    assert base.x_test is None and split.x_test.shape == (100, 1)


def test_friedman1_formula_and_standardisation():
    cfg = Friedman1Options(n_train=300, n_test=100, noise_std=0.0, standardize=False)
    data = make_dataset(cfg)
    x = data.x_train.astype(np.float64)
    expected = (10 * np.sin(np.pi * x[:, 0] * x[:, 1]) + 20 * (x[:, 2] - 0.5) ** 2
                + 10 * x[:, 3] + 5 * x[:, 4])
    np.testing.assert_allclose(data.y_train[:, 0], expected, rtol=1e-5)
    np.testing.assert_allclose(data.f_eval, data.y_test, rtol=1e-5)  # no noise: truth = target
    scaled = make_dataset(Friedman1Options(n_train=300, n_test=100))
    np.testing.assert_allclose(scaled.x_train.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(scaled.y_train.std(), 1, rtol=1e-4)


def write_csv(path, rows, header="a,b,y"):
    path.write_text(header + "\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")
    return path


def table(n=20):
    rng = np.random.default_rng(0)
    return [(rng.normal(), rng.normal(), rng.normal()) for _ in range(n)]


def test_csv_split_and_standardisation(tmp_path):
    path = write_csv(tmp_path / "t.csv", table(20))
    data = make_dataset(FileOptions(name="csv", path=str(path), inputs=["a", "b"], target="y",
                                   test_fraction=0.25))
    assert data.x_train.shape == (15, 2) and data.x_test.shape == (5, 2)
    np.testing.assert_allclose(data.x_train.mean(axis=0), 0, atol=1e-6)
    assert data.f_eval is None


def test_npz_matches_csv(tmp_path):
    rows = np.array(table(12))
    path = tmp_path / "t.npz"
    np.savez(path, a=rows[:, 0], b=rows[:, 1], y=rows[:, 2])
    csv_path = write_csv(tmp_path / "t.csv", rows.tolist())
    common = dict(inputs=["a", "b"], target="y")
    from_npz = make_dataset(FileOptions(name="npz", path=str(path), **common))
    from_csv = make_dataset(FileOptions(name="csv", path=str(csv_path), **common))
    np.testing.assert_allclose(from_npz.x_train, from_csv.x_train, rtol=1e-6)


@pytest.mark.parametrize("content,pattern", [
    (None, "not found"),
    ("a,b,y\n1,2,3\n1,x,3\n1,2,3\n1,2,3\n", r"line 3, column 'b': 'x' is not a number"),
    ("a,c,y\n" + "1,2,3\n" * 6, r"columns \['b'\] not in .* available: a, c, y"),
    ("a,b,y\n1,2,3\n1,2,3\n", "has 2 rows; at least 4"),
    ("a,b,y\n1,2,3\n1,2\n1,2,3\n1,2,3\n", "line 3, column 'y': '\\(missing\\)'"),
])
def test_bad_csv_files(tmp_path, content, pattern):
    path = tmp_path / "bad.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=pattern):
        make_dataset(FileOptions(name="csv", path=str(path), inputs=["a", "b"], target="y"))


def test_npz_with_objects_is_refused(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, a=np.array([{"x": 1}] * 5, dtype=object), y=np.arange(5.0))
    with pytest.raises(ConfigError, match="cannot read .* as npz of numeric columns"):
        make_dataset(FileOptions(name="npz", path=str(path), inputs=["a"], target="y"))


def test_in_features_must_match_the_data():
    with pytest.raises(ConfigError, match=r"`model.in_features` must be 5 \(the data 'friedman1'"):
        headbayes.compose(["+experiment=sin_head", "data=friedman1", "model.in_features=1"])


def test_model_sizes_come_from_the_data():
    cfg = headbayes.compose(["+experiment=sin_head", "data=friedman1"])
    from headbayes.models import leaf_shapes

    assert leaf_shapes(cfg)["hidden_layers.0.weight"] == (16, 5)


def test_scaling_maps_back_to_original_units():
    data = make_dataset(Friedman1Options(n_train=300, n_test=100))
    raw = make_dataset(Friedman1Options(n_train=300, n_test=100, standardize=False))
    np.testing.assert_allclose(data.scaling.x_to_model(raw.x_train), data.x_train, atol=1e-5)
    np.testing.assert_allclose(data.scaling.y_to_original(data.y_train), raw.y_train,
                               rtol=1e-5, atol=1e-4)


def test_file_rows_follow_every_part_validation_included(tmp_path):
    """split.npz's rows: which of the file's rows each part holds, in the part's order."""
    from headbayes.datasets import make_dataset

    table = tmp_path / "t.csv"
    u = np.arange(50.0)
    table.write_text("u,y\n" + "".join(f"{a},{3 * a + 1}\n" for a in u))
    cfg = headbayes.compose(["data=csv", f"data.path={table}", "data.target=y",
                             "data.val_fraction=0.2", "data.standardize=false"])
    data = make_dataset(cfg.data)
    rows = data.rows
    assert sorted(np.concatenate([rows["train"], rows["val"], rows["test"]]).tolist()) == \
        list(range(50))
    for part in ("train", "val", "test"):
        np.testing.assert_array_equal(getattr(data, f"x_{part}")[:, 0], u[rows[part]])
        np.testing.assert_array_equal(getattr(data, f"y_{part}")[:, 0], 3 * u[rows[part]] + 1)


@pytest.mark.parametrize("inputs, message", [
    ("[a,y]", "`data.inputs` must be columns other than the target 'y'"),
    ("[a,a]", "`data.inputs` must be distinct columns"),
])
def test_inputs_are_distinct_and_never_the_target(tmp_path, inputs, message):
    """Round 5 (B1, B8): the target among the inputs gave test RMSE 3e-5 with exit 0."""
    table = tmp_path / "t.csv"
    table.write_text("a,b,y\n" + "".join(f"{i},{i % 3},{i % 5}\n" for i in range(20)))
    with pytest.raises(ConfigError, match=re.escape(message)):
        headbayes.compose(["data=csv", f"data.path={table}", "data.target=y",
                           f"data.inputs={inputs}"])


def test_a_row_longer_than_the_header_is_refused(tmp_path):
    """Round 5 (B2): '1,000,0.2' under a header of two columns and a target was read as
    a=1, b=0, y=0.2."""
    table = tmp_path / "t.csv"
    table.write_text("a,b,y\n" + "".join(f"{i},{i % 3},{i % 5}\n" for i in range(20))
                     + "1,000,0.2,0.3\n")
    with pytest.raises(ConfigError, match="line 22 has 4 cells, the header 3"):
        make_dataset(headbayes.compose(["data=csv", f"data.path={table}", "data.target=y"]).data)


def test_a_non_finite_cell_is_named_by_column_and_row(tmp_path):
    """P4 (round 5): 'holds non-finite values in the chosen columns' named neither."""
    table = tmp_path / "t.csv"
    table.write_text("a,b,y\n" + "".join(f"{i},{'nan' if i == 6 else i % 3},{i % 5}\n"
                                         for i in range(20)))
    with pytest.raises(ConfigError, match=r"holds a non-finite value \(nan\) in column 'b', "
                                          r"data row 7"):
        make_dataset(headbayes.compose(["data=csv", f"data.path={table}", "data.target=y"]).data)


@pytest.mark.parametrize("files, message", [
    ({"t.csv": "a,b,y\n"}, "data.path: .*t.csv has a header row but no data rows"),
    ({"t.csv": "a,,y\n" + "".join(f"{i},{i},{i % 3}\n" for i in range(10))},
     "data.path: .*t.csv: column 2 of the header has no name"),  # P9
    ({"t.csv": "a,y\n" + "".join(f"{i},{i % 3}\n" for i in range(10)), "test.npz": None},
     "data.test_path: .*test.npz is an npz file; read it with data=npz"),
])
def test_file_messages_name_the_option_and_the_problem(tmp_path, files, message):
    """P5, P6 (round 5): a header-only csv 'held values that are not numbers'; an npz
    test_path was 'data.path: not UTF-8 text'."""
    for name, text in files.items():
        if text is None:
            np.savez(tmp_path / name, a=np.ones(3), y=np.ones(3))
        else:
            (tmp_path / name).write_text(text)
    overrides = ["data=csv", f"data.path={tmp_path / 't.csv'}", "data.target=y"]
    if "test.npz" in files:
        overrides.append(f"data.test_path={tmp_path / 'test.npz'}")
    with pytest.raises(ConfigError, match=message):
        make_dataset(headbayes.compose(overrides).data)


def test_an_npz_column_error_says_its_option_once(tmp_path):
    """P8 (round 5): 'data.path: cannot read ... as npz of numeric columns: data.path: ...'."""
    arrays = tmp_path / "t.npz"
    np.savez(arrays, a=np.zeros((10, 2)), y=np.arange(10.0))
    with pytest.raises(ConfigError) as refused:
        make_dataset(headbayes.compose(["data=npz", f"data.path={arrays}", "data.target=y",
                                        "data.inputs=[a]"]).data)
    assert str(refused.value).count("data.path") == 1 and "one value per row" in \
        str(refused.value)
