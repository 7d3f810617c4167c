"""Datasets: the registry (`datasets.base`) and one module per kind of dataset; importing the
package registers them all (`core.registry.discover`).
"""

from headbayes.core.registry import discover
from headbayes.datasets.base import (Dataset, Scaling, DATASETS, make_dataset, data_sizes,
                                     IDENTITY, describe, scaling_from, with_validation,
                                     report_parts, report_points)

__all__ = ["Dataset", "Scaling", "DATASETS", "make_dataset", "data_sizes", "IDENTITY", "describe",
           "scaling_from", "with_validation", "report_parts", "report_points"]

from headbayes.datasets import synthetic  # noqa: E402,F401  (listed first: the seed's)

discover(__name__)
