"""Models: the registry and the model protocol (`models.base`), the built-in `mlp` and `cnn`,
LoRA adapters, masks, frozen-prefix features and skeletons. Importing the package registers
every model module (`core.registry.discover`).
"""

from headbayes.core.registry import discover
from headbayes.models.base import (MODELS, TargetModel, model_options,
                                   model_entry, model_key, construct, is_shape, model_structure,
                                   is_inexact_shape, leaf_shapes, sampled_paths, checked_arrays,
                                   check_draws,
                                   model_sizes, forward, first_sampled_stage, run_from, features,
                                   linear_head, SIZE_KEYS, stages_of, run_stages)

__all__ = ["MODELS", "TargetModel", "model_options", "model_entry",
           "model_key", "construct", "is_shape", "model_structure", "is_inexact_shape",
           "leaf_shapes", "sampled_paths", "checked_arrays", "check_draws", "model_sizes",
           "forward", "first_sampled_stage", "run_from", "features", "linear_head", "SIZE_KEYS",
           "stages_of", "run_stages"]

from headbayes.models import mlp  # noqa: E402,F401  (listed first: the default)

discover(__name__)
