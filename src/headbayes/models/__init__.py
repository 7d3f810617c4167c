"""Model registry and the model protocol.

A model is an `equinox.Module` whose `__call__(x)` maps ONE example `x` of shape
(in_features,) to its output of shape (out_features,); headbayes `vmap`s it over a batch, as
equinox layers expect. Leaves are named by their equinox paths (`blocks.0.linear.weight`).

Built-in models (`model.name`): `mlp`, `cnn`. A user's model: a config with
`_target_: module.factory` (the module is imported from the working directory); headbayes calls
`factory(**other_keys, key=PRNGKey(model.seed), in_features=..., out_features=...)`. Input and
output sizes come from the data unless `model.in_features` / `model.out_features` set them.

Optional stages (feature caching and the exact reference): a model may define
`stages` (a tuple of leaf-path prefixes, one per stage, in forward order; every leaf belongs
to one) and `run_stages(h, start, stop)` (stages start .. stop − 1 on one example, stop None
for the end), with `run_stages(x, 0, None) == model(x)`. When every leaf of the stages before
stage k is frozen, their output on the data is computed once and the sampler runs the model
from stage k on. When the last stage is an `equinox.nn.Linear` and only its leaves are sampled,
the exact Gaussian posterior is the report's reference. Models without stages run the full
forward pass every step. A model whose `__call__` and `run_stages` also take a batch (n, ...)
directly may set the class attribute `batched = True`; headbayes then calls it on the batch
instead of through `vmap` (the built-in MLP does, which keeps its float rounding).
"""

from headbayes.core.registry import discover
from headbayes.models.base import (MODELS, TargetModel, check_target_origin, model_options,
                                   model_entry, model_key, construct, is_shape, model_structure,
                                   is_inexact_shape, leaf_shapes, model_sizes, forward,
                                   first_sampled_stage, run_from, features, linear_head, SIZE_KEYS)

__all__ = ["MODELS", "TargetModel", "check_target_origin", "model_options", "model_entry",
           "model_key", "construct", "is_shape", "model_structure", "is_inexact_shape",
           "leaf_shapes", "model_sizes", "forward", "first_sampled_stage", "run_from", "features",
           "linear_head", "SIZE_KEYS"]

from headbayes.models import mlp  # noqa: E402,F401  (listed first: the default)

discover(__name__)
