"""headbayes' own calls use no deprecated API: runs of every sampler and body mode, and a
prediction, raise no DeprecationWarning or FutureWarning."""

import warnings

import pytest

import headbayes

SHORT = ["sampler.warmup=20", "sampler.keep=10", "report.plots=false"]
CASES = [["+experiment=sin_head", *SHORT], ["+experiment=sin_head_nuts", *SHORT],
         *[["+experiment=sin_head", f"sampler={s}", *SHORT]
           for s in ("hmc", "mala", "sghmc", "vi", "laplace")],
         ["+experiment=sin_head", "sampler=exact", "sampler.keep=10", "report.plots=false"],
         ["+experiment=sin_mixed", *SHORT],
         ["+experiment=sin_head_joint", "body.steps=50", *SHORT],
         ["+experiment=moons_head", "body.steps=50", *SHORT],
         ["+experiment=sin_lora", "body.steps=50", *SHORT]]


@pytest.mark.slow
def test_runs_and_predictions_raise_no_deprecation_warning(tmp_path, monkeypatch):
    monkeypatch.setenv("HEADBAYES_OUTPUT_DIR", str(tmp_path / "outputs"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i, overrides in enumerate(CASES):
            run = headbayes.run(headbayes.compose(overrides), tmp_path / str(i))
            run.predict([[0.1, 0.2]] if "moons" in overrides[0] else [[0.1]])
    deprecated = [f"{w.filename}:{w.lineno}: {w.message}" for w in caught
                  if issubclass(w.category, (DeprecationWarning, FutureWarning))]
    assert deprecated == []
