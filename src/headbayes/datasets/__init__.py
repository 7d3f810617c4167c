"""Dataset registry: each option builds a `Dataset` of float32 arrays; pure given its config and
the files it names.

A dataset entry carries its schema, its checks and `sizes(options) -> (inputs, outputs)`, so
models take their input and output sizes from the data. Each module of this package registers
its datasets when imported; a new dataset is a module here plus `configs/data/NAME.yaml`.
"""

from headbayes.core.registry import discover
from headbayes.datasets.base import (Dataset, Scaling, DATASETS, make_dataset, data_sizes,
                                     IDENTITY, describe, scaling_from, with_validation,
                                     report_parts, report_points)

__all__ = ["Dataset", "Scaling", "DATASETS", "make_dataset", "data_sizes", "IDENTITY", "describe",
           "scaling_from", "with_validation", "report_parts", "report_points"]

from headbayes.datasets import synthetic  # noqa: E402,F401  (listed first: the seed's)

discover(__name__)
