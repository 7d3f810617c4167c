"""examples/notebook/fit.ipynb, executed in a Jupyter kernel: it runs from top to bottom, shows
its progress bar and report inline, writes nothing where it runs but what it saves, and its
diabetes figures are the command line's with the same settings, to the last printed digit."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "notebook" / "fit.ipynb"
NETS = ("import equinox as eqx\nimport jax\n\n\ndef mlp(key, in_features, out_features):\n"
        "    return eqx.nn.MLP(in_features, out_features, 50, 1, activation=jax.nn.relu, "
        "key=key)\n")


def _text(cell) -> list[str]:
    return [o.get("text") or o.get("data", {}).get("text/plain", "")
            for o in cell.get("outputs", [])]


@pytest.mark.slow
def test_the_notebook_runs_and_gives_the_command_lines_figures(tmp_path):
    import nbclient
    import nbformat
    from sklearn.datasets import load_diabetes

    from headbayes.app.console import format_value

    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert os.listdir(tmp_path) == []  # it saved into a temporary folder only
    cells = [c for c in nb.cells if c.cell_type == "code"]
    fits = [c for c in cells if "headbayes.fit(" in c.source]
    assert len(fits) == 2
    for cell in fits:
        shown = [o["data"].get("text/html", "") for o in cell.outputs if "data" in o]
        assert any("<progress value=" in page for page in shown)
        assert any("<img src='data:image/png;base64," in page for page in shown)
    printed = dict(line.split(None, 1) for line in _text(fits[0])[-1].splitlines())
    assert printed["verdict"] == "ok" and "test_rmse" in printed

    # the command line with the same settings: the table as a csv, the network by _target_
    load_diabetes(as_frame=True).frame.to_csv(tmp_path / "diabetes.csv", index=False)
    (tmp_path / "nets.py").write_text(NETS)
    (tmp_path / "configs" / "model").mkdir(parents=True)
    (tmp_path / "configs" / "model" / "net.yaml").write_text("_target_: nets.mlp\n")
    run = subprocess.run(
        [sys.executable, "-m", "headbayes", "run", "+experiment=tabular", "model=net",
         "data.path=diabetes.csv", "data.target=target", "mask.include=[layers.1]",
         f"hydra.run.dir={tmp_path / 'cli'}"], cwd=tmp_path, capture_output=True, text=True,
        env={**os.environ, "HEADBAYES_OUTPUT_DIR": str(tmp_path / "outputs")})
    assert run.returncode == 0, run.stderr
    cli = json.loads((tmp_path / "cli" / "metrics.json").read_text())
    assert {k: format_value(v) for k, v in cli.items()} == printed
