"""`headbayes export`: an ArviZ netCDF file with the chain, step statistics and data."""

import sys

import arviz as az  # the dev extra (installed by `make test`) includes headbayes[arviz]
import numpy as np
import pytest

from headbayes.config.saved import load_config
from headbayes.datasets import make_dataset
from headbayes.core.rundir import RunFiles
from headbayes.core.store import load_chain_and_info


@pytest.mark.slow
def test_export_round_trips_through_arviz(headbayes, run_in_process, tmp_path):
    _, _, run_dir = run_in_process("+experiment=sin_head_nuts", "sampler.warmup=100",
                                   "sampler.keep=50", "sampler.num_chains=2")
    output = tmp_path / "run.nc"
    headbayes("export", run_dir, "--output", output, check_code=0)
    idata = az.from_netcdf(output)
    assert {"posterior", "sample_stats", "observed_data", "constant_data"} <= set(idata.groups())
    chain, info = load_chain_and_info(run_dir)
    for path, draws in chain.items():
        variable = idata.posterior[path]
        assert variable.dims[:2] == ("chain", "draw")
        np.testing.assert_array_equal(variable.values, draws)
    stats = idata.sample_stats
    np.testing.assert_allclose(stats["acceptance_rate"].values,
                               info["acceptance_sum"] / info["steps"])
    assert stats["diverging"].shape == (2, 50) and stats["diverging"].dtype == bool
    data = make_dataset(load_config(RunFiles(run_dir)).data)
    np.testing.assert_array_equal(idata.observed_data["y"].values, data.y_train[:, 0])
    assert float(az.rhat(idata)["output_layer.bias"].max()) < 1.1


def test_export_refuses_a_damaged_chain(headbayes, run_in_process):
    _, _, run_dir = run_in_process("+experiment=sin_head", "sampler.warmup=10",
                                   "sampler.keep=20")
    part = next((run_dir / "chain").glob("part-*.npz"))
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0xFF
    part.write_bytes(bytes(data))
    result = headbayes("export", run_dir)
    assert result.returncode == 4 and part.name in result.stderr
    assert not (run_dir / "inference_data.nc").exists()


def test_export_without_arviz_says_how_to_install(run_in_process, monkeypatch):
    from headbayes.core.errors import ConfigError
    from headbayes.report.export import export_netcdf

    _, _, run_dir = run_in_process("+experiment=sin_head", "sampler.warmup=10",
                                   "sampler.keep=20")
    monkeypatch.setitem(sys.modules, "arviz", None)  # import arviz now raises ImportError
    with pytest.raises(ConfigError, match=r"pip install 'headbayes\[arviz\]'"):
        export_netcdf(run_dir)
