"""Differential operators of the physics likelihood, and the `pde` dataset they generate.

An operator is a function `operator(u, x, c) -> L[u](x)`: `u` maps one point x (shape (d,))
to the solution's value there (a number), `c` is the {name: value} dict of the PDE's
coefficients; derivatives of `u` are taken by JAX (`jax.grad`, `jax.hessian`). The PDE is
L[u] = f. Built in (`OPERATORS`):
- `poisson1d`: λu″ (coefficients lam); linear;
- `nonlinear_poisson1d`: λu″ + k·tanh(u) (lam, k);
- `allen_cahn2d`: λΔu + u(u² − 1) (lam), on 2-D points.
A user's operator is a function with that signature named `module.function` (imported from the
working directory or a `--code` folder, like a model's `_target_`); it is linear only if it
carries `linear = True`.

The `pde` dataset (`PDEOptions`) draws sensors of a known solution u (`SOLUTIONS`, or a user's
`module.function` of one point): `forcing` sensors of f = L[u] (the operator applied to u by
JAX), `boundary` values of u on the boundary and `sensors` values of u inside, each with
Gaussian noise (sd `noise_f` for f, `noise_u` for u, drawn by numpy.random.default_rng(seed):
first the 2-D points, then the noise of f, then of u). Its training rows hold the point in
x_train and [value, term] in y_train, term 0 for a forcing sensor and 1 for a value of u
(`FORCING`, `VALUE`); the eval points are a grid of `eval_points` per axis with the true u.
"""

import importlib
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import numpy as np

from headbayes.core.checks import at_least, nonnegative_float, require
from headbayes.core.errors import ConfigError
from headbayes.datasets import DATASETS, IDENTITY, Dataset
from headbayes.models.code import import_path

__all__ = ["Operator", "OPERATORS", "SOLUTIONS", "PDEOptions", "operator_of", "solution_of",
           "FORCING", "VALUE", "MAX_POINTS", "is_builtin", "value_rows", "forcing_values", "solution_values"]

FORCING, VALUE = 0, 1  # y_train[:, 1] of a forcing sensor and of a value of u
MAX_POINTS = 1_000_000  # training rows and eval points, each


class Operator(NamedTuple):
    apply: Callable  # (u, x, c) -> L[u](x)
    inputs: int | None  # dimension of a point (None: any)
    coefficients: tuple  # the names it reads from c (a user's: unknown, so ())
    linear: bool  # L[a·u + b·v] = a·L[u] + b·L[v]


def _second(u, x, axis: int):
    """∂²u/∂x_axis² at x, by forward mode twice (cheaper than the whole Hessian)."""
    import jax
    import jax.numpy as jnp

    e = jnp.zeros_like(x).at[axis].set(1)
    return jax.jvp(lambda p: jax.jvp(u, (p,), (e,))[1], (x,), (e,))[1]


def _second_1d(u, x):
    return _second(u, x, 0)


def _laplacian(u, x):
    return sum(_second(u, x, i) for i in range(x.shape[0]))


OPERATORS = {
    "poisson1d": Operator(lambda u, x, c: c["lam"] * _second_1d(u, x), 1, ("lam",), True),
    "nonlinear_poisson1d": Operator(
        lambda u, x, c: c["lam"] * _second_1d(u, x) + c["k"] * _tanh(u(x)), 1, ("lam", "k"),
        False),
    "allen_cahn2d": Operator(lambda u, x, c: c["lam"] * _laplacian(u, x) + u(x) * (u(x)**2 - 1),
                             2, ("lam",), False),
}


def _tanh(v):
    import jax.numpy as jnp

    return jnp.tanh(v)


def _sin3(x):
    import jax.numpy as jnp

    return jnp.sin(6 * x[0]) ** 3


def _sin_pi_xy(x):
    import jax.numpy as jnp

    return jnp.sin(jnp.pi * x[0]) * jnp.sin(jnp.pi * x[1])


SOLUTIONS = {  # name -> (u of one point, its dimension)
    "sin3": (_sin3, 1),  # B-PINN §3.2.1 and §3.3.1: sin³(6x)
    "sin_pi_xy": (_sin_pi_xy, 2),  # B-PINN §3.2.3: sin(πx)·sin(πy)
}


def _user_function(spec: str, key: str) -> Callable:
    """The function `module.function` a config names, imported as a model's `_target_` is."""
    module_name, _, attr = spec.rpartition(".")
    if not module_name or not all(p.isidentifier() for p in spec.split(".")):
        raise ConfigError(f"`{key}` must be a built-in name or 'module.function', got {spec!r}")
    try:
        with import_path():
            module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if not module_name.startswith(str(e.name)):  # the module imports a missing one
            raise ConfigError(f"`{key}`: module '{module_name}' failed while importing: "
                              f"{e}") from None
        raise ConfigError(f"`{key}`: cannot import module '{module_name}' (run headbayes from "
                          f"the folder that holds it)") from None
    except (Exception, SystemExit) as e:  # noqa: BLE001 (the user's module failed to import)
        raise ConfigError(f"`{key}`: module '{module_name}' failed while importing: "
                          f"{type(e).__name__}: {e}") from None
    function = getattr(module, attr, None)
    if function is None:
        raise ConfigError(f"`{key}`: module '{module_name}' has no function '{attr}'")
    if not callable(function):
        raise ConfigError(f"`{key}`: '{attr}' in module '{module_name}' is a "
                          f"{type(function).__name__}, not a function")
    return function


def is_builtin(spec) -> bool:
    return spec in OPERATORS or spec in SOLUTIONS


def _named(spec, key: str, builtins: dict):
    """`builtins[spec]`, or None for a user's `module.function`; ConfigError for anything
    else."""
    if not isinstance(spec, str):
        raise ConfigError(f"`{key}` must be a name, got {spec!r}")
    if spec in builtins:
        return builtins[spec]
    if "." not in spec:
        raise ConfigError(f"`{key}` must be one of {', '.join(builtins)} or a function "
                          f"'module.function', got {spec!r}")
    return None


def operator_of(spec: str, key: str = "data.operator") -> Operator:
    """The operator a config names: a key of `OPERATORS` or a user's `module.function`."""
    builtin = _named(spec, key, OPERATORS)
    if builtin is not None:
        return builtin
    function = _user_function(spec, key)
    return Operator(function, None, (), getattr(function, "linear", False) is True)


def solution_of(spec: str, key: str = "data.solution") -> tuple[Callable, int | None]:
    """(u of one point, its dimension or None for a user's) of the solution a config names."""
    return _named(spec, key, SOLUTIONS) or (_user_function(spec, key), None)


@dataclass
class PDEOptions:
    name: str = "pde"
    operator: str = "poisson1d"  # a key of OPERATORS, or module.function
    coefficients: dict = field(default_factory=lambda: {"lam": 0.01})  # the true values
    solution: str = "sin3"  # a key of SOLUTIONS, or module.function of one point
    dimension: int | None = None  # of a point; None: the built-in solution's or operator's
    x_min: float = -0.7  # the domain: [x_min, x_max] on every axis
    x_max: float = 0.7
    forcing: int = 16  # f sensors: equidistant in 1-D (ends included), uniform in 2-D
    boundary: int = 2  # u on the boundary: 1-D 0 or 2 (the ends); 2-D per edge, equidistant
    sensors: int = 0  # u inside: equidistant in 1-D (ends excluded), uniform in 2-D
    noise_f: float = 0.01
    noise_u: float = 0.01
    eval_points: int = 201  # per axis
    seed: int = 0


def _dimension(options: PDEOptions) -> int:
    """The points' dimension: the built-in solution's, else the built-in operator's, else
    `dimension` (checked against theirs: `_check_pde`)."""
    if options.solution in SOLUTIONS:
        return SOLUTIONS[options.solution][1]
    if options.operator in OPERATORS:
        return OPERATORS[options.operator].inputs
    return options.dimension


def _check_pde(options: PDEOptions, cfg) -> None:
    operator = operator_of(options.operator)
    _, solution_inputs = solution_of(options.solution)
    d = _dimension(options)
    if d is None:
        raise ConfigError(f"data.dimension: a user's solution ({options.solution}) with a "
                          f"user's operator needs the points' dimension (1 or 2)")
    if options.dimension is not None and options.dimension != d:
        raise ConfigError(f"`data.dimension` is {options.dimension}, but the built-in "
                          f"{'solution' if options.solution in SOLUTIONS else 'operator'} "
                          f"works on {d}-D points; drop it")
    require(d in (1, 2), "data.dimension", d, "1 or 2 (points on a line or a square)")
    if operator.inputs is not None and solution_inputs is not None \
            and operator.inputs != solution_inputs:
        raise ConfigError(f"data.operator '{options.operator}' works on {operator.inputs}-D "
                          f"points, data.solution '{options.solution}' is {solution_inputs}-D")
    if not isinstance(options.coefficients, dict) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)
            for v in options.coefficients.values()):
        raise ConfigError(f"`data.coefficients` must map names to finite numbers, got "
                          f"{options.coefficients!r}")
    missing = [n for n in operator.coefficients if n not in options.coefficients]
    if missing:
        raise ConfigError(f"data.operator '{options.operator}' needs data.coefficients."
                          f"{', data.coefficients.'.join(missing)}")
    require(np.isfinite(options.x_min) and np.isfinite(options.x_max)
            and options.x_max > options.x_min, "data.x_max", options.x_max,
            f"finite and > data.x_min ({options.x_min})")
    at_least("data.forcing", options.forcing, 0)
    at_least("data.sensors", options.sensors, 0)
    at_least("data.boundary", options.boundary, 0)
    if d == 1:
        require(options.boundary in (0, 2), "data.boundary", options.boundary,
                "0 or 2 in 1-D (the two ends)")
    require(options.forcing + options.boundary * (1 if d == 1 else 4) + options.sensors >= 1,
            "data.forcing", options.forcing, "such that there is at least one sensor")
    require(options.forcing + 4 * options.boundary + options.sensors <= MAX_POINTS,
            "data.forcing", options.forcing, f"such that there are at most {MAX_POINTS} rows")
    at_least("data.eval_points", options.eval_points, 2)
    require(options.eval_points ** d <= MAX_POINTS, "data.eval_points", options.eval_points,
            f"such that there are at most {MAX_POINTS} eval points ({d}-D)")
    nonnegative_float("data.noise_f", options.noise_f)
    nonnegative_float("data.noise_u", options.noise_u)
    if not (is_builtin(options.operator) and is_builtin(options.solution)):
        _probe(operator, options, d)


def _probe(operator: Operator, options: PDEOptions, d: int) -> None:
    """ConfigError unless a user's solution and operator give one finite number a point on
    three points of the domain (traced by JAX, as the run will)."""
    points = np.linspace(options.x_min, options.x_max, 3)[:, None] * np.ones((1, d))
    solution, _ = solution_of(options.solution)
    for key, name, compute in (
            ("data.solution", options.solution, lambda: solution_values(solution, points)),
            ("data.operator", options.operator, lambda: forcing_values(
                operator, solution, options.coefficients, points))):
        try:
            values = np.asarray(compute())
        except Exception as e:  # noqa: BLE001 (the user's function failed)
            first = (str(e).strip().splitlines() or [""])[0][:200]
            raise ConfigError(f"`{key}` {name} fails on {d}-D points of the domain (it takes "
                              f"one point, shape ({d},), and returns a number; traced by "
                              f"JAX): {type(e).__name__}: {first}") from None
        if values.shape != (len(points),):
            raise ConfigError(f"`{key}` {name} must return one number a point; it returned "
                              f"shape {values.shape[1:]} for each point")
        if not np.all(np.isfinite(values)):
            raise ConfigError(f"`{key}` {name} must return finite numbers; on {d}-D points "
                              f"{points.tolist()} it gave {values.tolist()}")
    if operator.linear and not is_builtin(options.operator):
        _check_linear(operator, options, points)


def _check_linear(operator: Operator, options: PDEOptions, points: np.ndarray) -> None:
    """ConfigError unless L[2v + 3w] = 2 L[v] + 3 L[w] (float64, relative 1e-6) on `points`
    for two smooth functions v, w: a user's `linear = True` is what the exact reference
    trusts."""
    import jax.numpy as jnp

    def v(x):
        return jnp.sin(jnp.sum(x)) + 0.5 * jnp.sum(x) ** 2

    def w(x):
        return jnp.exp(0.3 * jnp.sum(x))

    def both(x):
        return 2 * v(x) + 3 * w(x)

    c = options.coefficients
    lhs = forcing_values(operator, both, c, points)
    rhs = 2 * forcing_values(operator, v, c, points) + 3 * forcing_values(operator, w, c, points)
    if not np.allclose(lhs, rhs, rtol=1e-6, atol=1e-9 * (1 + np.abs(rhs).max())):
        raise ConfigError(f"`data.operator` {options.operator} says linear = True, but "
                          f"L[2v + 3w] != 2 L[v] + 3 L[w] on points of the domain ({lhs[0]:.6g} "
                          f"against {rhs[0]:.6g}); drop `linear` (no exact reference then)")


def _points(options: PDEOptions, d: int, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(forcing points, boundary points, interior sensor points), float64 (n, d)."""
    low, high = options.x_min, options.x_max
    if d == 1:
        forcing = np.linspace(low, high, options.forcing)[:, None]
        boundary = np.array([[low], [high]])[:options.boundary]
        sensors = np.linspace(low, high, options.sensors + 2)[1:-1, None]
        return forcing, boundary, sensors
    forcing = rng.uniform(low, high, size=(options.forcing, 2))
    t = np.linspace(low, high, options.boundary)
    ones = np.ones_like(t)
    boundary = np.concatenate([np.stack([t, low * ones], 1), np.stack([t, high * ones], 1),
                               np.stack([low * ones, t], 1), np.stack([high * ones, t], 1)])
    sensors = rng.uniform(low, high, size=(options.sensors, 2))
    return forcing, boundary, sensors


def _eval_grid(options: PDEOptions, d: int) -> np.ndarray:
    axis = np.linspace(options.x_min, options.x_max, options.eval_points)
    if d == 1:
        return axis[:, None]
    gx, gy = np.meshgrid(axis, axis, indexing="ij")
    return np.stack([gx.reshape(-1), gy.reshape(-1)], axis=1)


def forcing_values(operator: Operator, solution: Callable, coefficients: dict,
                   points: np.ndarray) -> np.ndarray:
    """f = L[u] at `points` (n, d), in float64."""
    import jax
    import jax.numpy as jnp

    with jax.enable_x64(True):
        c = {k: jnp.float64(v) for k, v in coefficients.items()}
        apply = jax.jit(jax.vmap(lambda p: operator.apply(solution, p, c)))
        return np.asarray(apply(jnp.asarray(points, jnp.float64)), np.float64)


def solution_values(solution: Callable, points: np.ndarray) -> np.ndarray:
    import jax
    import jax.numpy as jnp

    with jax.enable_x64(True):
        return np.asarray(jax.jit(jax.vmap(solution))(jnp.asarray(points, jnp.float64)),
                          np.float64)


def value_rows(data: Dataset) -> Dataset:
    """`data` with only its rows that are values of u (for plots of u), target column only."""
    rows = data.y_train[:, 1] == VALUE
    return data._replace(x_train=data.x_train[rows], y_train=data.y_train[rows, :1])


def _pde_sizes(options: PDEOptions) -> tuple[int, int]:
    return _dimension(options), 1


@DATASETS.register("pde", PDEOptions, check=_check_pde, sizes=_pde_sizes)
def make_pde(options: PDEOptions) -> Dataset:
    """The sensors of the module docstring."""
    operator = operator_of(options.operator)
    solution, _ = solution_of(options.solution)
    d = _dimension(options)
    rng = np.random.default_rng(options.seed)
    forcing, boundary, sensors = _points(options, d, rng)
    values = np.concatenate([boundary, sensors])
    f = forcing_values(operator, solution, options.coefficients, forcing)
    u = solution_values(solution, values) if len(values) else np.zeros(0)
    f = f + options.noise_f * rng.normal(size=f.shape)
    u = u + options.noise_u * rng.normal(size=u.shape)
    x = np.concatenate([forcing, values]).astype(np.float32)
    y = np.stack([np.concatenate([f, u]),
                  np.concatenate([np.full(len(f), FORCING), np.full(len(u), VALUE)])], axis=1)
    x_eval = _eval_grid(options, d)
    truth = solution_values(solution, x_eval)[:, None]
    return Dataset(x, y.astype(np.float32), x_eval.astype(np.float32),
                   truth.astype(np.float32), inputs=("x", "y")[:d] if d <= 2 else
                   tuple(f"x{i}" for i in range(d)), target="u", scaling=IDENTITY(d, 1))
