"""Posteriors fitted during warmup that then draw i.i.d.: mean-field VI, Laplace, exact.

VI and Laplace fit during the `warmup` steps of the sampling loop itself (step t uses the key of
step t, like every sampler), so the fit is cut into chunks, shows on the progress bar and is
checkpointed and resumed like sampling; then each step is an independent draw.

- `vi`: a diagonal Gaussian fitted by blackjax's mean-field VI (KL, stick-the-landing gradient,
  `num_mc_samples` draws per step, optax Adam at `learning_rate`), started at the initial
  parameters with log-scale -2; `keep` draws from the fitted Gaussian.
- `laplace`: `warmup` Adam steps (at `learning_rate`) towards the MAP of the sampled leaves,
  then Newton steps with the exact Hessian and a backtracking line search, until no step
  raises the log-density (at most `NEWTON_STEPS`; one step is exact when the posterior is
  Gaussian; a log-concave posterior reaches its mode), then the Gaussian with covariance
  T·(−∇²log p)⁻¹ at that point; `keep` draws. The loop's step number (the same for every
  chain) picks fitting or drawing, so a drawing step costs one matrix-vector product.
- `exact`: i.i.d. draws from the closed-form Gaussian posterior of a linear head with a
  conjugate likelihood (`headbayes.analysis.exact`, computed in float64 before the loop and
  handed to it in `hyper`: its mean and the Cholesky factor of its covariance, T included);
  with σ sampled, from the quadrature mixture over log σ (a grid point drawn by its weight,
  u jittered uniformly within its cell, then θ given σ). `warmup` draws are discarded, `keep`
  kept. Offered only where the exact reference applies
  (`headbayes.analysis.exact.not_applicable_reason`); elsewhere exit 2 before anything compiles.
"""

from dataclasses import dataclass
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from headbayes.analysis.exact import (design, exact_posterior, noise_mixture,
                                      not_applicable_reason, sampled_paths)
from headbayes.core.checks import at_least, positive_float
from headbayes.core.errors import ConfigError
from headbayes.posterior.noise import WithNoise, is_sampled
from headbayes.samplers.base import (SAMPLERS, STEP_KEY, PositionState, Sampler,
                                     SamplerOptions, check_common, make_info, tempered)

__all__ = ["make_vi", "make_laplace", "make_exact", "GaussianState", "NEWTON_STEPS",
           "REFIT_STEPS", "LaplaceOptions", "VIOptions", "ExactOptions"]


@dataclass
class LaplaceOptions(SamplerOptions):
    name: str = "laplace"
    learning_rate: float = 1e-2
    warmup: int = 2000
    keep: int = 1000
    thin: int = 1


@dataclass
class VIOptions(LaplaceOptions):
    name: str = "vi"
    num_mc_samples: int = 5


@dataclass
class ExactOptions(SamplerOptions):
    name: str = "exact"
    warmup: int = 0  # draws discarded first (none are needed: the draws are i.i.d.)
    keep: int = 1000
    thin: int = 1


def _check_exact(options, cfg) -> None:
    check_common(options, cfg)
    reason = not_applicable_reason(cfg, sampled_paths(cfg))
    if reason is not None:
        raise ConfigError(f"sampler=exact needs a closed-form posterior, and this run has "
                          f"{reason}; choose another sampler (nuts, laplace, ...)")


def _check(options, cfg) -> None:
    check_common(options, cfg)
    at_least("sampler.warmup", options.warmup, 1)
    positive_float("sampler.learning_rate", options.learning_rate)
    if hasattr(options, "num_mc_samples"):
        at_least("sampler.num_mc_samples", options.num_mc_samples, 1)


def _laplace_hint(options) -> str:
    return ("The Hessian at the optimum may not be negative definite; try more "
            f"sampler.warmup (now {options.warmup}) or a smaller sampler.learning_rate")


def _vi_hint(options) -> str:
    return f"Try a smaller sampler.learning_rate (now {options.learning_rate:g})"


FITTED = {"fitted"}
HYPER = ("learning_rate", "temperature")

NEWTON_STEPS = 50  # at most; the loop ends at the first step that finds no better point
HALVINGS = 16  # step lengths tried along a Newton direction: 1, 1/2, ..., 2^-15
REFIT_STEPS = 50  # VI steps refitting a Gibbs group's Gaussian to each sweep's conditional


class GaussianState(NamedTuple):
    """A Gaussian fitted during warmup, then drawn from: the position (the fit's current
    location while fitting, a draw afterwards), the fitted mean and scale factor (diagonal
    vector or dense factor), the fit's own state (optimiser included) and the step count."""

    position: object
    mean: jax.Array
    scale: jax.Array
    fit: object
    step: jax.Array


def _draw(key, state: GaussianState, unravel) -> GaussianState:
    noise = jax.random.normal(key, state.mean.shape, state.mean.dtype)
    offset = state.scale @ noise if state.scale.ndim == 2 else state.scale * noise
    return state._replace(position=unravel(state.mean + offset))


def _fitted_sampler(logdensity_fn: Callable, warmup: int, fit: Callable, start_scale: Callable,
                    start_fit: Callable, refit: Callable) -> Sampler:
    """A Sampler that fits for `warmup` steps inside the sampling loop (one call of the
    chunked program like any step, so a signal waits for a chunk, not for the whole fit),
    then draws. `fit(key, state, logdensity, hyper, last) -> (state, grad evals)` takes one
    fitting step and, when `last`, sets the fitted mean and scale; `start_fit(position, hyper)`
    and `start_scale(flat)` give the fit's initial state and the scale's shape;
    `refit(key, state, logdensity, hyper) -> (state, grad evals)` fits the drawing Gaussian
    again to a changed target (a Gibbs group's refresh)."""

    def init(position, problem, hyper):
        flat = ravel_pytree(position)[0]
        return GaussianState(position, flat, start_scale(flat), start_fit(position, hyper),
                             jnp.int32(0))

    def refresh(key, state: GaussianState, problem, hyper):
        """Once fitted: refit to the (changed) target, so the next draw is from the fit to
        it; while fitting: nothing (the fit steps follow the target anyway)."""
        logdensity = tempered(logdensity_fn, problem, hyper)
        return jax.lax.cond(state.step < warmup, lambda s: (s, jnp.int32(0)),
                            lambda s: refit(key, s, logdensity, hyper), state)

    def step(key, state: GaussianState, problem, hyper):
        logdensity = tempered(logdensity_fn, problem, hyper)
        # the loop's step, the same for every chain: one branch runs, not both (a Gibbs
        # group's hyper lacks it; its own count is the same number, per chain)
        t = hyper.get(STEP_KEY, state.step)

        def fitting(state):
            fitted, grads = fit(key, state, logdensity, hyper, t == warmup - 1)
            return fitted, make_info(num_grad_evals=grads)

        def drawing(state):
            return _draw(key, state, _unravel_of(state.position)), make_info(num_grad_evals=0)

        new, info = jax.lax.cond(t < warmup, fitting, drawing, state)
        return new._replace(step=state.step + 1), info

    return Sampler(init, step, refresh=refresh)


def _gaussian_at(logdensity, x, newton_steps: int):
    """(mode, dense scale factor, Newton steps taken): Newton steps from `x`, each along the
    Newton direction at the longest of 1, 1/2, 1/4, ... (HALVINGS lengths) that raises the
    log-density, until none does or `newton_steps` were taken (a log-concave target, such as
    a linear head under any shipped likelihood, reaches its mode from anywhere); then the
    Gaussian there with covariance (−∇²log p)⁻¹."""
    hessian = jax.hessian(logdensity)
    lengths = 0.5 ** jnp.arange(HALVINGS, dtype=x.dtype)

    def newton(carry):
        x, value, steps, _ = carry
        direction = jnp.linalg.solve(-hessian(x), jax.grad(logdensity)(x))
        candidates = x + lengths[:, None] * direction
        values = jax.vmap(logdensity)(candidates)
        better = values > value  # NaN is never better
        k = jnp.argmax(better)
        moved = better[k]
        return (jnp.where(moved, candidates[k], x), jnp.where(moved, values[k], value),
                steps + moved.astype(jnp.int32), moved)

    def going(carry):
        return carry[3] & (carry[2] < newton_steps)

    mode, _, steps, _ = jax.lax.while_loop(going, newton,
                                           (x, logdensity(x), jnp.int32(0), jnp.bool_(True)))
    eigenvalues, eigenvectors = jnp.linalg.eigh(-hessian(mode))
    # covariance = V diag(1/λ) Vᵀ; NaN (a failed run) if some λ <= 0
    scale = eigenvectors / jnp.sqrt(jnp.where(eigenvalues > 0, eigenvalues, jnp.nan))
    return mode, scale, steps


def _newton_grads(steps, size: int):
    """Gradient evaluations of `_gaussian_at`: a Hessian (size gradients) and a gradient per
    Newton step (the step that found no better point included), and the final Hessian."""
    return (steps + 1) * (size + 1) + size


def _unravel_of(position):
    return ravel_pytree(position)[1]


@SAMPLERS.register("vi", VIOptions, check=_check, caps=FITTED, hyper=HYPER, hint=_vi_hint)
def make_vi(logdensity_fn: Callable, cfg) -> Sampler:
    import blackjax  # imported when a sampler is built, not for its config
    import optax

    mfvi = blackjax.vi.meanfield_vi

    def start_fit(position, hyper):
        rho = jax.tree.map(lambda x: jnp.full_like(x, -2.0), position)
        return mfvi.MFVIState(position, rho, optax.adam(hyper["learning_rate"]).init(
            (position, rho)))

    def fit(key, state: GaussianState, logdensity, hyper, last):
        optimizer = optax.adam(hyper["learning_rate"])
        vi_state, _ = mfvi.step(key, state.fit, logdensity, optimizer, cfg.num_mc_samples)
        mean = ravel_pytree(vi_state.mu)[0]
        scale = jnp.exp(ravel_pytree(vi_state.rho)[0])
        fitted = state._replace(position=vi_state.mu, fit=vi_state,
                                mean=jnp.where(last, mean, state.mean),
                                scale=jnp.where(last, scale, state.scale))
        return fitted, cfg.num_mc_samples

    def refit(key, state: GaussianState, logdensity, hyper):
        def one(i, fitted):
            return fit(jax.random.fold_in(key, i), fitted, logdensity, hyper,
                       i == REFIT_STEPS - 1)[0]

        refitted = jax.lax.fori_loop(0, REFIT_STEPS, one, state)
        return refitted._replace(position=state.position), REFIT_STEPS * cfg.num_mc_samples

    return _fitted_sampler(logdensity_fn, cfg.warmup, fit,
                           lambda flat: jnp.full_like(flat, jnp.exp(-2.0)), start_fit, refit)


@SAMPLERS.register("laplace", LaplaceOptions, check=_check, caps=FITTED, hyper=HYPER,
                   hint=_laplace_hint)
def make_laplace(logdensity_fn: Callable, cfg) -> Sampler:
    import optax

    def start_fit(position, hyper):
        flat = ravel_pytree(position)[0]
        return flat, optax.adam(hyper["learning_rate"]).init(flat)

    def fit(key, state: GaussianState, logdensity, hyper, last):
        x, opt_state = state.fit
        unravel = _unravel_of(state.position)
        flat_logdensity = lambda z: logdensity(unravel(z))  # noqa: E731
        grad = jax.grad(lambda z: -flat_logdensity(z))(x)
        updates, opt_state = optax.adam(hyper["learning_rate"]).update(grad, opt_state)
        x = optax.apply_updates(x, updates)

        def finish(x):
            mean, scale, steps = _gaussian_at(flat_logdensity, x, NEWTON_STEPS)
            return mean, scale, _newton_grads(steps, x.size)

        mean, scale, grads = jax.lax.cond(
            last, finish, lambda x: (state.mean, state.scale, jnp.int32(0)), x)
        fitted = state._replace(position=unravel(jnp.where(last, mean, x)), fit=(x, opt_state),
                                mean=mean, scale=scale)
        return fitted, 1 + grads

    def refit(key, state: GaussianState, logdensity, hyper):
        unravel = _unravel_of(state.position)
        mean, scale, steps = _gaussian_at(lambda z: logdensity(unravel(z)), state.mean,
                                          NEWTON_STEPS)
        return state._replace(mean=mean, scale=scale), _newton_grads(steps, state.mean.size)

    return _fitted_sampler(logdensity_fn, cfg.warmup, fit,
                           lambda flat: jnp.zeros((flat.size, flat.size), flat.dtype), start_fit,
                           refit)


def _exact_fit(cfg, params: dict, sampled: list, data) -> dict:
    """The closed-form posterior for the loop's `hyper`, computed in float64 on the host (the
    float32 Hessian of a collinear head is too ill-conditioned to factor): {"mean", "scale"}
    (its Cholesky factor); with σ sampled the mixture over log σ (`headbayes.analysis.exact`):
    {"log_weights", "log_sigma", "spacing", "means", "sds", "vectors"}."""
    import numpy as np

    f32 = lambda a: jnp.asarray(a, jnp.float32)  # noqa: E731
    params = {p: np.asarray(v) for p, v in params.items()}
    if is_sampled(cfg.likelihood):
        jac, offset = design(cfg, params, sampled, data.x_train)
        mixture = noise_mixture(cfg, jac, np.asarray(data.y_train, np.float64).reshape(-1)
                                - offset)
        with np.errstate(divide="ignore"):
            log_weights = np.log(mixture.weights)
        return {"log_weights": f32(log_weights), "log_sigma": f32(mixture.log_sigma),
                "spacing": f32(mixture.log_sigma[1] - mixture.log_sigma[0]),
                "means": f32(mixture.means), "sds": f32(np.sqrt(mixture.variances)),
                "vectors": f32(mixture.vectors)}
    posterior = exact_posterior(cfg, params, sampled, data)
    scale = np.linalg.cholesky(0.5 * (posterior.cov + posterior.cov.T))
    return {"mean": f32(posterior.mean), "scale": f32(scale)}


def _exact_draw(key, hyper: dict):
    """(θ flat, log σ or None): one draw from the fitted posterior in `hyper`."""
    pick, noise, jitter = jax.random.split(key, 3)
    if "log_weights" not in hyper:
        z = jax.random.normal(noise, hyper["mean"].shape)
        return hyper["mean"] + hyper["scale"] @ z, None
    k = jax.random.categorical(pick, hyper["log_weights"])
    z = jax.random.normal(noise, hyper["means"].shape[1:])
    theta = hyper["means"][k] + hyper["vectors"] @ (hyper["sds"][k] * z)
    u = hyper["log_sigma"][k] + hyper["spacing"] * (jax.random.uniform(jitter) - 0.5)
    return theta, u


@SAMPLERS.register("exact", ExactOptions, check=_check_exact, caps=FITTED | {"closed_form"},
                   hyper=("temperature",), hint=_laplace_hint, prepare=_exact_fit)
def make_exact(logdensity_fn: Callable, cfg) -> Sampler:
    def init(position, problem, hyper):
        return PositionState(position)

    def step(key, state, problem, hyper):
        position = state.position
        model = position.model if isinstance(position, WithNoise) else position
        theta, u = _exact_draw(key, hyper)
        model = ravel_pytree(model)[1](theta)
        drawn = model if u is None else WithNoise(model, u)
        return PositionState(drawn), make_info(num_grad_evals=0)

    return Sampler(init, step, constant_info=lambda hyper: make_info(num_grad_evals=0),
                   trivial_init=True)
