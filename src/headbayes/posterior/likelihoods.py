"""Likelihood registry: the log-likelihood of the targets given the network's output.

Every family registers its schema and these extras: `kind` ("regression" or "classification";
a classifier needs data with classes, a regression data without), `model_outputs(n)` (the
network's outputs for n data outputs, or n classes), `loss(prediction, y)` (the mean negative
log-likelihood per point up to constants, for `body.weight_decay` pretraining), `check`; a
family whose network predicts the noise registers `split(outputs) -> (mean, noise sd)` (numpy),
a classifier `probabilities(logits) -> (..., K)` (numpy, `headbayes.report.classify`).

- `gaussian` (docs/config.md, Numerical conventions): residual r = (f(x) − y) / sigma;
  `reduction: mean` gives −mean(r²) (the seed's tempered posterior), `reduction: sum` gives
  −½ Σ r² (the proper Gaussian likelihood; a minibatch of n of N points scales it by N/n).
  It is conjugate with a linear head (capability `linear_gaussian`: the exact reference
  applies) and its predictive adds N(0, sigma²) observation noise to the function. `sigma`
  is a number, learned before sampling (`evidence`, `validation`:
  headbayes.analysis.hyperparameters) or sampled with the leaves (`sampled`, with the prior
  `sigma_prior`: headbayes.posterior.noise).
- `heteroscedastic`: the network outputs a mean μ and a log-scale s per target column
  (out_features doubles: μ first, then s): Σ [−½((y − μ)/e^s)² − s]; its predictive adds
  N(0, e^(2s(x))) noise, each draw its own.
- `bernoulli` (two classes, one logit f): Σ [y log σ(f) + (1 − y) log σ(−f)];
  `categorical` (K ≥ 2 classes, one logit each): Σ log softmax(f)_y. Labels are 0 .. K − 1.
For these three, `reduction: mean` divides the sum by its number of terms (points, times
targets for `heteroscedastic`: the average log-likelihood), `sum` keeps it (times N/n for a
minibatch). None is conjugate with a linear
head, so the report gives no exact reference for them and says why.
"""

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import numpy as np

from headbayes.core.checks import check_scale, choice
from headbayes.core.errors import ConfigError
from headbayes.core.normal import Z_95
from headbayes.core.registry import Registry
from headbayes.datasets import DATASETS
from headbayes.posterior.noise import check_noise_prior

__all__ = ["LIKELIHOODS", "Likelihood", "GaussianOptions", "FamilyOptions", "make_likelihood",
           "gaussian_log_likelihood", "gaussian_from_squares", "REDUCTIONS", "is_classifier",
           "split_heteroscedastic", "data_classes", "output_split", "NoisePredictive",
           "GAUSSIAN_NOISE", "noise_predictive", "bernoulli_probabilities",
           "softmax_probabilities"]

LIKELIHOODS = Registry("likelihood")
REDUCTIONS = ("mean", "sum")


class Likelihood(NamedTuple):
    """`log_likelihood(prediction, y, scale, data_scale)`: scale is `likelihood.sigma` as an
    array (a jit argument, so sweeps share one program); `noise_sd`: the observation noise the
    predictive adds, in the units of the data the model sees; `from_squares(Σ(f − y)², count,
    scale, data_scale)`: the same log-likelihood from the sum of squared residuals over `count`
    numbers (families with capability `linear_gaussian`; `headbayes.posterior.sufficient`)."""

    log_likelihood: Callable
    noise_sd: float | None  # None: no constant noise (heteroscedastic, classifiers)
    from_squares: Callable | None = None


class NoisePredictive(NamedTuple):
    """A regression family's observation noise in the predictive: y = f + noise·ε, with
    `noise` the family's scale (the sd for Gaussian noise; a location-scale family, so in
    other units it is noise × the units' scale). Numpy, elementwise, broadcasting; the
    report passes float64.

    logpdf(f, y, noise): log p(y | f, noise), the constant included;
    replicate(rng, f, noise): one y per element of f, ε drawn from the numpy Generator `rng`;
    variance(noise): Var(y | f);
    covers_90(f, y, noise): whether y lies in the central 90% interval of p(y | f)."""

    logpdf: Callable
    replicate: Callable
    variance: Callable
    covers_90: Callable


def _gaussian_logpdf(f, y, sigma):
    """log N(y; f, sigma²), elementwise."""
    residual = y - f
    return -0.5 * (residual / sigma) ** 2 - np.log(sigma) - 0.5 * np.log(2 * np.pi)


def _gaussian_replicate(rng, f, sigma):
    return f + sigma * rng.normal(size=f.shape)


def _gaussian_variance(sigma):
    return sigma**2


def _gaussian_covers_90(f, y, sigma):
    """|y − f| ≤ Z_95 · sigma."""
    return np.abs(y - f) <= Z_95 * sigma


GAUSSIAN_NOISE = NoisePredictive(_gaussian_logpdf, _gaussian_replicate, _gaussian_variance,
                                 _gaussian_covers_90)


@dataclass
class GaussianOptions:
    name: str = "gaussian"
    sigma: Any = 0.05  # a number > 0, evidence, validation (hyperparameters), sampled (noise)
    reduction: str = "mean"
    sigma_prior: str = "half_normal"  # with sigma=sampled: half_normal | inverse_gamma
    sigma_prior_scale: float = 1.0  # half-normal scale c; inverse-gamma on σ²: scale c²
    sigma_prior_shape: float = 2.0  # inverse-gamma on σ²: shape a


def gaussian_log_likelihood(prediction, y, sigma, reduction: str, data_scale=1.0):
    import jax.numpy as jnp

    return gaussian_from_squares(jnp.sum((prediction - y) ** 2), y.size, sigma, reduction,
                                 data_scale)


def gaussian_from_squares(sum_of_squares, count, sigma, reduction: str, data_scale=1.0):
    """The Gaussian log-likelihood from Σ(f − y)² over `count` numbers (the constant dropped)."""
    squares = sum_of_squares / sigma**2  # Σ r²; one division, not one a point
    if reduction == "mean":
        return -squares / count
    return -0.5 * data_scale * squares


def _check_gaussian(options, cfg) -> None:
    check_scale("likelihood.sigma", options.sigma, sampled_ok=True)
    choice("likelihood.reduction", options.reduction, REDUCTIONS)
    check_noise_prior(options)
    classes = data_classes(cfg)
    if classes is not None:
        raise ConfigError(f"likelihood 'gaussian' needs regression data; the data "
                          f"'{cfg.data.name}' has {classes} classes (use likelihood=categorical"
                          f"{' or bernoulli' if classes == 2 else ''})")
    if options.sigma == "sampled" and cfg.sampler.temperature != 1:
        raise ConfigError(f"`likelihood.sigma=sampled` needs sampler.temperature=1, got "
                          f"{cfg.sampler.temperature}")


def _mse(prediction, y):
    import jax.numpy as jnp

    return jnp.mean((prediction - y) ** 2)


@LIKELIHOODS.register("gaussian", GaussianOptions, check=_check_gaussian,
                      caps={"linear_gaussian"}, kind="regression", model_outputs=lambda n: n,
                      loss=_mse, predictive=GAUSSIAN_NOISE)
def make_gaussian(options: GaussianOptions) -> Likelihood:
    def log_likelihood(prediction, y, sigma, data_scale=1.0):
        return gaussian_log_likelihood(prediction, y, sigma, options.reduction, data_scale)

    def from_squares(sum_of_squares, count, sigma, data_scale=1.0):
        return gaussian_from_squares(sum_of_squares, count, sigma, options.reduction, data_scale)

    return Likelihood(log_likelihood, options.sigma, from_squares)


@dataclass
class FamilyOptions:
    """The keys of `heteroscedastic`, `bernoulli` and `categorical`."""
    name: str = "categorical"
    reduction: str = "sum"


def bernoulli_probabilities(logits: np.ndarray) -> np.ndarray:
    """[1 − σ(f), σ(f)] of one logit f."""
    p = 1 / (1 + np.exp(-logits[..., :1]))
    return np.concatenate([1 - p, p], axis=-1)


def softmax_probabilities(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def data_classes(cfg) -> int | None:
    """The number of classes of the run's data (None for regression data)."""
    classes = DATASETS[cfg.data.name].extras.get("classes")
    return None if classes is None else classes(cfg.data)


def _check_family(options, cfg) -> None:
    choice("likelihood.reduction", options.reduction, REDUCTIONS)
    classes = data_classes(cfg)
    if options.name == "heteroscedastic":
        if classes is not None:
            raise ConfigError(f"likelihood '{options.name}' needs regression data; the data "
                              f"'{cfg.data.name}' has {classes} classes (use categorical)")
        return
    if classes is None:
        hint = (" (set data.classes=true for a class column)"
                if cfg.data.name in ("csv", "npz") else "")
        raise ConfigError(f"likelihood '{options.name}' needs data with classes; the data "
                          f"'{cfg.data.name}' has a numeric target{hint}")
    if options.name == "bernoulli" and classes != 2:
        raise ConfigError(f"likelihood 'bernoulli' needs 2 classes, the data has {classes}; "
                          f"use likelihood=categorical")
    if classes < 2:
        raise ConfigError(f"likelihood '{options.name}' needs at least 2 classes, the data has "
                          f"{classes}")


def _total(per_point, reduction: str, data_scale):
    import jax.numpy as jnp

    return jnp.mean(per_point) if reduction == "mean" else data_scale * jnp.sum(per_point)


def split_heteroscedastic(prediction):
    """(mean μ, log-scale s) of a heteroscedastic network's output (..., 2·out)."""
    half = prediction.shape[-1] // 2
    return prediction[..., :half], prediction[..., half:]


def _mean_and_sd(outputs):
    """(μ, e^s) of heteroscedastic outputs, numpy float64."""
    mean, log_scale = split_heteroscedastic(np.asarray(outputs, np.float64))
    return mean, np.exp(log_scale)


def output_split(name: str) -> Callable | None:
    """`split(outputs) -> (mean, noise scale)` of a family whose network predicts its noise
    (`heteroscedastic`), else None (the noise, if any, is the likelihood's)."""
    return LIKELIHOODS[name].extras.get("split")


def noise_predictive(name: str) -> NoisePredictive | None:
    """The `predictive` of family `name` (None for a classifier); a regression family
    without one is an error naming what to register."""
    entry = LIKELIHOODS[name]
    if entry.extras["kind"] == "classification":
        return None
    if "predictive" not in entry.extras:
        raise KeyError(f"likelihood '{name}' (regression) registers no `predictive` "
                       f"(a NoisePredictive: logpdf, replicate, variance, covers_90)")
    return entry.extras["predictive"]


def _heteroscedastic_points(prediction, y):
    import jax.numpy as jnp

    mu, s = split_heteroscedastic(prediction)
    return -0.5 * ((y - mu) * jnp.exp(-s)) ** 2 - s


def _bernoulli_points(prediction, y):
    import jax

    return y * jax.nn.log_sigmoid(prediction) + (1 - y) * jax.nn.log_sigmoid(-prediction)


def _categorical_points(prediction, y):
    import jax
    import jax.numpy as jnp

    labels = y[:, 0].astype(jnp.int32)
    return jnp.take_along_axis(jax.nn.log_softmax(prediction), labels[:, None], axis=1)


def _family(points: Callable) -> Callable:
    """The registry builder of a family whose log-likelihood sums `points(prediction, y)`."""
    def build(options: FamilyOptions) -> Likelihood:
        def log_likelihood(prediction, y, scale=None, data_scale=1.0):
            return _total(points(prediction, y), options.reduction, data_scale)

        return Likelihood(log_likelihood, None)

    return build


for _name, _points, _kind, _outputs, _own in (
        ("heteroscedastic", _heteroscedastic_points, "regression", lambda n: 2 * n,
         {"split": _mean_and_sd, "predictive": GAUSSIAN_NOISE}),
        ("bernoulli", _bernoulli_points, "classification", lambda n: 1,
         {"probabilities": bernoulli_probabilities}),
        ("categorical", _categorical_points, "classification", lambda n: n,
         {"probabilities": softmax_probabilities})):
    LIKELIHOODS.register(_name, FamilyOptions, check=_check_family, kind=_kind,
                         model_outputs=_outputs,
                         loss=lambda prediction, y, points=_points: -points(prediction, y).mean(),
                         **_own)(_family(_points))


def make_likelihood(options) -> Likelihood:
    return LIKELIHOODS[options.name].build(options)


def is_classifier(options) -> bool:
    return LIKELIHOODS[options.name].extras["kind"] == "classification"
