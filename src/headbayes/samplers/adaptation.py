"""Stan's windowed warmup (step size by dual averaging, mass matrix by Welford estimates in the
slow windows), one step at a time, from blackjax's non-deprecated parts:
`mass_matrix_adaptation`, `dual_averaging_adaptation` and `build_schedule`. The arithmetic is
that of blackjax's (deprecated) `window_adaptation.base`."""

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["WindowState", "window_adaptation", "schedule"]


class WindowState(NamedTuple):
    ss_state: object  # dual averaging
    imm_state: object  # mass matrix estimate
    step_size: jax.Array
    inverse_mass_matrix: jax.Array


def schedule(num_steps: int) -> np.ndarray:
    """(num_steps, 2) int32: (stage: 0 fast / 1 slow, is_middle_window_end) of every warmup step
    (one dummy row when `num_steps` is 0)."""
    if num_steps == 0:
        return np.zeros((1, 2), np.int32)
    from blackjax.adaptation.staged_adaptation import build_schedule

    return np.asarray(build_schedule(num_steps), np.int32).reshape(num_steps, 2)


def window_adaptation(is_mass_matrix_diagonal: bool, target_acceptance_rate: float,
                      shrinkage: float = 0.0) -> tuple[Callable, Callable, Callable]:
    """(init(position, step_size, inverse_mass_matrix=None: the identity),
    update(state, (stage, window_end), position,
    acceptance_rate), final(state) -> (step_size, inverse_mass_matrix)).
    `shrinkage`: pseudo-draws at the previous estimate that each slow window's estimate
    counts besides its own draws (blackjax's `imm_shrinkage_to_previous`; 0 is Stan's)."""
    from blackjax.adaptation.mass_matrix import mass_matrix_adaptation
    from blackjax.adaptation.step_size import dual_averaging_adaptation
    from jax.flatten_util import ravel_pytree

    mm_init, mm_update, mm_final = mass_matrix_adaptation(
        is_mass_matrix_diagonal, imm_shrinkage_to_previous=shrinkage)
    da_init, da_update, da_final = dual_averaging_adaptation(target_acceptance_rate)

    def init(position, step_size, inverse_mass_matrix=None) -> WindowState:
        imm_state = mm_init(ravel_pytree(position)[0].size, inverse_mass_matrix)
        return WindowState(da_init(step_size), imm_state, step_size,
                           imm_state.inverse_mass_matrix)

    def fast(position, acceptance_rate, state: WindowState) -> WindowState:
        ss_state = da_update(state.ss_state, acceptance_rate)
        return state._replace(ss_state=ss_state, step_size=jnp.exp(ss_state.log_step_size))

    def slow(position, acceptance_rate, state: WindowState) -> WindowState:
        ss_state = da_update(state.ss_state, acceptance_rate)
        return state._replace(ss_state=ss_state, imm_state=mm_update(state.imm_state, position),
                              step_size=jnp.exp(ss_state.log_step_size))

    def window_end(state: WindowState) -> WindowState:
        imm_state = mm_final(state.imm_state)
        ss_state = da_init(da_final(state.ss_state))
        return WindowState(ss_state, imm_state, jnp.exp(ss_state.log_step_size),
                           imm_state.inverse_mass_matrix)

    def update(state: WindowState, stage, position, acceptance_rate) -> WindowState:
        state = jax.lax.switch(stage[0], (fast, slow), position, acceptance_rate, state)
        return jax.lax.cond(stage[1], window_end, lambda s: s, state)

    def final(state: WindowState):
        return jnp.exp(state.ss_state.log_step_size_avg), state.imm_state.inverse_mass_matrix

    return init, update, final
