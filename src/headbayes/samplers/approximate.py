"""Posteriors fitted during warmup that then draw i.i.d.: mean-field VI, Laplace, exact.

- `vi`: a diagonal Gaussian fitted by blackjax's mean-field VI (KL, stick-the-landing gradient,
  `num_mc_samples` draws per step, optax Adam at `learning_rate`), started at the initial
  parameters with log-scale -2; `keep` draws from the fitted Gaussian.
- `laplace`: `warmup` Adam steps (at `learning_rate`) towards the MAP of the sampled leaves,
  then `NEWTON_STEPS` Newton steps with the exact Hessian, each kept only if it raises the
  log-density (one step is exact when the posterior is Gaussian), then the Gaussian with
  covariance T·(−∇²log p)⁻¹ at that point; `keep` draws.
- `exact`: i.i.d. draws from the closed-form Gaussian posterior of a linear head with a
  conjugate likelihood (`headbayes.exact`, computed in float64 before the loop and handed to it
  in `hyper`: its mean and the Cholesky factor of its covariance, T included); with σ sampled,
  from the quadrature mixture over log σ (a grid point drawn by its weight, u jittered
  uniformly within its cell, then θ given σ). `warmup` draws are discarded, `keep` kept.
  Offered only where the exact reference applies (`headbayes.exact.not_applicable_reason`);
  elsewhere exit 2 before anything compiles.
"""

from dataclasses import dataclass
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from headbayes.checks import at_least, positive_float
from headbayes.samplers import SAMPLERS
from headbayes.samplers.base import (PositionState, Sampler, SamplerOptions, check_common,
                                     make_info, tempered)

__all__ = ["make_vi", "make_laplace", "make_exact", "GaussianState", "NEWTON_STEPS",
           "LaplaceOptions", "VIOptions", "ExactOptions"]


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
    from headbayes.errors import ConfigError
    from headbayes.exact import not_applicable_reason, sampled_paths

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

NEWTON_STEPS = 3


class GaussianState(NamedTuple):
    """A fitted Gaussian (mean, scale factor: diagonal vector or Cholesky factor) and a draw."""

    position: object
    mean: jax.Array
    scale: jax.Array
    opt_state: object


def _draw(key, state: GaussianState, unravel) -> GaussianState:
    noise = jax.random.normal(key, state.mean.shape, state.mean.dtype)
    offset = state.scale @ noise if state.scale.ndim == 2 else state.scale * noise
    return state._replace(position=unravel(state.mean + offset))


def _fixed_draw_sampler(init, warmup, unravel_of) -> Sampler:
    def info(hyper):
        return make_info(num_grad_evals=0)

    def step(key, state, problem, hyper):
        return _draw(key, state, unravel_of(state.position)), info(hyper)

    return Sampler(init, step, warmup, info)


def _gaussian_at(logdensity, x, unravel, newton_steps: int) -> GaussianState:
    """`newton_steps` Newton steps from `x` (each kept only where it raises the log-density),
    then the Gaussian with covariance (−∇²log p)⁻¹ there (NaN, a failed run, unless the
    Hessian is negative definite)."""
    def newton(x, _):
        precision = -jax.hessian(logdensity)(x)
        proposal = x + jnp.linalg.solve(precision, jax.grad(logdensity)(x))
        better = jnp.all(jnp.isfinite(proposal)) & (logdensity(proposal) > logdensity(x))
        return jnp.where(better, proposal, x), None

    mode, _ = jax.lax.scan(newton, x, None, length=newton_steps)
    precision = -jax.hessian(logdensity)(mode)
    eigenvalues, eigenvectors = jnp.linalg.eigh(0.5 * (precision + precision.T))
    # covariance = V diag(1/λ) Vᵀ; NaN (a failed run) if some λ <= 0
    scale = eigenvectors / jnp.sqrt(jnp.where(eigenvalues > 0, eigenvalues, jnp.nan))
    return GaussianState(unravel(mode), mode, scale, None)


def _unravel_of(position):
    return ravel_pytree(position)[1]


@SAMPLERS.register("vi", VIOptions, check=_check, caps=FITTED, hyper=HYPER, hint=_vi_hint)
def make_vi(logdensity_fn: Callable, cfg) -> Sampler:
    import blackjax  # imported when a sampler is built, not for its config
    import optax

    def init(position, problem, hyper):
        flat = ravel_pytree(position)[0]
        return GaussianState(position, flat, jnp.full_like(flat, jnp.exp(-2.0)), None)

    def warmup(key, state, problem, hyper, num_steps: int):
        optimizer = optax.adam(hyper["learning_rate"])
        mu, rho = state.position, jax.tree.map(lambda x: jnp.full_like(x, -2.0), state.position)
        vi_state = blackjax.vi.meanfield_vi.MFVIState(mu, rho, optimizer.init((mu, rho)))
        logdensity = tempered(logdensity_fn, problem, hyper)

        def one(vi_state, step_key):
            vi_state, _ = blackjax.vi.meanfield_vi.step(step_key, vi_state, logdensity, optimizer,
                                                        cfg.num_mc_samples)
            return vi_state, None

        vi_state, _ = jax.lax.scan(one, vi_state, jax.random.split(key, num_steps))
        mean = ravel_pytree(vi_state.mu)[0]
        scale = jnp.exp(ravel_pytree(vi_state.rho)[0])
        fitted = GaussianState(vi_state.mu, mean, scale, None)
        return fitted, make_info(num_steps, False, num_steps * cfg.num_mc_samples, 0.0)

    return _fixed_draw_sampler(init, warmup, _unravel_of)


@SAMPLERS.register("laplace", LaplaceOptions, check=_check, caps=FITTED, hyper=HYPER,
                   hint=_laplace_hint)
def make_laplace(logdensity_fn: Callable, cfg) -> Sampler:
    import optax

    def init(position, problem, hyper):
        flat = ravel_pytree(position)[0]
        return GaussianState(position, flat, jnp.zeros((flat.size, flat.size), flat.dtype), None)

    def warmup(key, state, problem, hyper, num_steps: int):
        flat, unravel = ravel_pytree(state.position)
        logdensity = lambda x: tempered(logdensity_fn, problem, hyper)(unravel(x))  # noqa: E731
        optimizer = optax.adam(hyper["learning_rate"])

        def one(carry, _):
            x, opt_state = carry
            grad = jax.grad(lambda z: -logdensity(z))(x)
            updates, opt_state = optimizer.update(grad, opt_state)
            return (optax.apply_updates(x, updates), opt_state), None

        (mode, _), _ = jax.lax.scan(one, (flat, optimizer.init(flat)), None, length=num_steps)

        fitted = _gaussian_at(logdensity, mode, unravel, NEWTON_STEPS)
        hessian_grads = (NEWTON_STEPS + 1) * flat.size + NEWTON_STEPS
        return fitted, make_info(num_steps, False, num_steps + hessian_grads, 0.0)

    return _fixed_draw_sampler(init, warmup, _unravel_of)


def _exact_fit(cfg, params: dict, sampled: list, data) -> dict:
    """The closed-form posterior for the loop's `hyper`, computed in float64 on the host (the
    float32 Hessian of a collinear head is too ill-conditioned to factor): {"mean", "scale"}
    (its Cholesky factor); with σ sampled the mixture over log σ (`headbayes.exact`):
    {"log_weights", "log_sigma", "spacing", "means", "sds", "vectors"}."""
    import numpy as np

    from headbayes.exact import design, noise_mixture, exact_posterior
    from headbayes.noise import is_sampled

    f32 = lambda a: jnp.asarray(a, jnp.float32)  # noqa: E731
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


@SAMPLERS.register("exact", ExactOptions, check=_check_exact, caps=FITTED,
                   hyper=("temperature",), hint=_laplace_hint, prepare=_exact_fit)
def make_exact(logdensity_fn: Callable, cfg) -> Sampler:
    from headbayes.noise import WithNoise

    def init(position, problem, hyper):
        return PositionState(position)

    def step(key, state, problem, hyper):
        position = state.position
        model = position.model if isinstance(position, WithNoise) else position
        theta, u = _exact_draw(key, hyper)
        model = ravel_pytree(model)[1](theta)
        drawn = model if u is None else WithNoise(model, u)
        return PositionState(drawn), make_info(num_grad_evals=0)

    return Sampler(init, step, None, lambda hyper: make_info(num_grad_evals=0),
                   trivial_init=True)
