"""`headbayes export RUN_DIR`: the chain as an ArviZ InferenceData netCDF file.

Groups: `posterior` (one variable per sampled leaf, named by its dotted path, dims `chain`,
`draw`, then the leaf's own axes), `sample_stats` (per kept draw: `acceptance_rate` averaged
over the draw's `thin` steps, `diverging` when any of them diverged, `num_grad_evals`,
`step_size`), `observed_data` (`y`, the training targets) and `constant_data` (`x`, the
training inputs). Checksums are verified first (a damaged chain exits 4). Needs the optional
extra: `pip install 'headbayes[arviz]'`.
"""

from pathlib import Path

import numpy as np

from headbayes.config.saved import load_config
from headbayes.core import store
from headbayes.core.errors import ConfigError, RunDirError
from headbayes.core.rundir import RunFiles
from headbayes.datasets import make_dataset
from headbayes.posterior.position import chain_leaves

__all__ = ["export_netcdf", "inference_data"]


def _arviz():
    try:
        import arviz
    except ImportError:
        raise ConfigError("headbayes export needs ArviZ: pip install 'headbayes[arviz]'") from None
    return arviz


def inference_data(run_dir: Path, code: tuple = ()):
    """The run's chain, step statistics and training data as `arviz.InferenceData` (`code`:
    as in `config.saved.load_config`)."""
    files = RunFiles(run_dir)
    cfg = load_config(files, code=code)
    az = _arviz()
    draws, info = files.chain(cfg.sampler, chain_leaves(cfg))
    dims = {path: ["chain", "draw"] + [f"{path}_dim_{i}" for i in range(a.ndim - 2)]
            for path, a in draws.items()}
    stats = {}
    if info:
        steps = np.maximum(info["steps"], 1)
        stats = {"acceptance_rate": info["acceptance_sum"] / steps,
                 "diverging": info["divergences"] > 0,
                 "num_grad_evals": info["grad_evals"], "step_size": info["step_size"]}
    data = make_dataset(cfg.data)
    return az.from_dict(posterior=draws, sample_stats=stats or None,
                        observed_data={"y": data.y_train[:, 0]},
                        constant_data={"x": data.x_train},
                        dims={**dims, "y": ["obs"], "x": ["obs", "input"]},
                        attrs={"headbayes_run_dir": str(Path(run_dir).resolve()),
                               "sampler": cfg.sampler.name})


def export_netcdf(run_dir: Path, output: Path | None = None, code: tuple = ()) -> Path:
    """Write `inference_data(run_dir)` to `output` (default RUN_DIR/inference_data.nc)."""
    run_dir = Path(run_dir)
    output = Path(output) if output else RunFiles(run_dir).path(RunFiles.NETCDF)
    if output.suffix != ".nc":
        raise ConfigError(f"--output: {output} must end in .nc (a netCDF file)")
    store.check_replaceable(output, "--output")
    idata = inference_data(run_dir, code)
    _check_room(output, sum(group.nbytes for group in idata.values()) + 2**20)
    with store.temporary_beside(output) as (_, temporary):
        try:
            idata.to_netcdf(str(temporary))
        except (RuntimeError, ValueError) as e:  # netCDF/HDF5 report OS errors this way too
            raise OSError(getattr(e, "errno", None), str(e)) from None
    return output


def _check_room(output: Path, size: int) -> None:
    """RunDirError (exit 4) when `size` bytes (the uncompressed arrays and a margin: an upper
    bound of the file) exceed the process's file-size limit or the free disk space. HDF5
    crashes the process when a write fails at that limit, so it is checked beforehand."""
    import resource
    import shutil

    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit != resource.RLIM_INFINITY and size > limit:
        raise RunDirError(f"cannot write {output}: up to {size} bytes would pass the file-size "
                          f"limit of {limit} bytes (ulimit -f); nothing was written")
    directory = output.parent if output.parent.is_dir() else Path(".")
    if size > shutil.disk_usage(directory).free:
        raise RunDirError(f"cannot write {output}: up to {size} bytes, more than the free space "
                          f"on its disk; nothing was written")
