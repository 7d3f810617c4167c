import jax
import jax.numpy as jnp
import numpy as np
import pytest

from headbayes.engine import programs, runner
from headbayes.models.mask import named_leaves
from headbayes.samplers.sgmcmc import MALAOptions, SGLDOptions, make_mala, make_sgld


def gaussian_logdensity(position, problem):
    return -0.5 * jnp.sum((position["w"] - problem) ** 2)


def sample(slots, warmup=13, keep=20, thin=3, num_chains=2, step_size=0.1, position=None,
           **options):
    state, draws, _ = sample_with_sums(slots, warmup, keep, thin, num_chains, step_size,
                                       position, **options)
    return state, draws


def sample_with_sums(slots, warmup=13, keep=20, thin=3, num_chains=2, step_size=0.1,
                     position=None, make=make_sgld, options=SGLDOptions(), calls=None,
                     target_seconds=0.5):
    """(last state, draws, info sums) of a run; `calls` collects the steps of every call."""
    sampler = make(gaussian_logdensity, options)
    position = position or {"w": jnp.zeros(3), "b": jnp.ones(())}
    hyper = {"step_size": jnp.float32(step_size), "temperature": jnp.float32(1.0)}
    problem = jnp.float32(2.0)
    state, keys = runner.init_loop(sampler, position, problem, hyper, seed=5,
                                   num_chains=num_chains)
    compiled, _ = runner.compile_loop(sampler, state, keys, problem, hyper, slots)
    if calls is not None:
        program = compiled
        compiled = lambda *args: calls.append(int(args[3].sum())) or program(*args)  # noqa: E731
    draws, sums = [], []
    for _, state, chunk_draws, chunk_sums in runner.run_loop(
            compiled, state, keys, problem, hyper, warmup=warmup, keep=keep, thin=thin,
            slots=slots, target_seconds=target_seconds):
        if chunk_draws is not None:
            draws.append(chunk_draws)
            sums.append(chunk_sums)
    if not draws:  # the run failed during warmup
        return state, None, None
    joined = lambda parts: jax.tree.map(lambda *d: np.concatenate(d, axis=1), *parts)  # noqa
    return state, joined(draws), joined(sums)


@pytest.mark.parametrize("draws,thin,slots", [(1, 1, 1), (5, 3, 7), (100, 2, 100)])
def test_a_sampling_chunk_runs_thin_steps_per_kept_draw(draws, thin, slots):
    chunk = runner.sampling_chunk(17, draws, thin, slots)
    assert chunk.start_step == 17 and chunk.num_draws == draws
    assert len(chunk.counts) == slots and all(chunk.counts[:draws] == thin)
    assert not chunk.counts[draws:].any()


def test_call_sizes_follow_the_measured_rate_both_ways():
    assert runner.grow_chunk(100, 0.001, 0.5) == 50_000  # fast: grows
    assert runner.grow_chunk(50_000, 5.0, 0.5) == 5_000  # slowed down: shrinks
    assert runner.grow_chunk(10, 100.0, 0.5) == 1  # never below one step


def test_choose_slots_bounds_chunk_memory():
    assert runner.choose_slots(400, 1, 17) == 400
    assert runner.choose_slots(5000, 1, 17) == 1000
    assert runner.choose_slots(400, 1024, 100_000, max_bytes=2**30) == 2
    assert runner.choose_slots(400, 1024, 10**9) == 1


def test_draws_do_not_depend_on_chunking():
    _, small = sample(slots=7)
    _, large = sample(slots=20, warmup=13)
    _, tiny_warmup_chunks = sample(slots=1, thin=3)  # warmup in chunks of 3 steps
    assert small["w"].shape == (2, 20, 3)
    np.testing.assert_array_equal(small["w"], large["w"])
    np.testing.assert_array_equal(small["w"], tiny_warmup_chunks["w"])


@pytest.mark.parametrize("make,options", [(make_sgld, SGLDOptions()),
                                          (make_mala, MALAOptions())])
def test_a_draw_longer_than_a_call_is_cut_into_calls_with_the_same_result(make, options,
                                                                          monkeypatch):
    """A kept draw whose `thin` steps would outlast a call runs in pieces of about
    `target_seconds` each (so a signal waits for one piece, not one draw), and gives the same
    draws and the same per-draw sums, bit for bit: the pieces carry the draw's sums."""
    run = dict(slots=4, warmup=0, keep=3, thin=400, make=make, options=options)
    calls, whole_calls = [], []
    _, cut_draws, cut_sums = sample_with_sums(**run, calls=calls, target_seconds=1e-9)
    assert max(calls) <= runner.FIRST_CALL_STEPS < 400 and sum(calls) == 3 * 400
    monkeypatch.setattr(runner, "FIRST_CALL_STEPS", 10**6)  # all three draws in one call
    _, whole_draws, whole_sums = sample_with_sums(**run, calls=whole_calls)
    assert whole_calls == [3 * 400]
    np.testing.assert_array_equal(cut_draws["w"], whole_draws["w"])
    for cut, whole in zip(jax.tree.leaves(cut_sums), jax.tree.leaves(whole_sums)):
        np.testing.assert_array_equal(cut, whole)
    assert (np.asarray(cut_sums.steps) == 400).all()


def test_chains_differ_and_unsampled_gradient_leaves_stay_put():
    _, draws = sample(slots=10)
    assert not np.allclose(draws["w"][0], draws["w"][1])
    # "b" has zero gradient: SGLD moves it by noise only, so it must vary too
    assert np.var(draws["b"][0]) > 0


def test_nonfinite_value_is_located_at_its_exact_step():
    """The loop checks after each slot (here a warmup call of 100 steps); the failing call is
    replayed step by step, so the record names the first step whose draw is non-finite."""
    state, draws = sample(slots=10, warmup=200, keep=10, thin=1, step_size=5.0)
    assert draws is None  # the failing warmup call was the last
    found = runner.first_nonfinite(state, named_leaves(state.first_bad_step))
    assert found is not None
    step, leaf, chain = found
    # |1 - eps| = 4: the error grows 4x per step and overflows float32 after ~64 steps
    assert leaf == "w" and 50 <= step < 80 and chain in (0, 1)
    # every step kept as a draw (draw i is step i): the first non-finite one is that step
    _, every = sample(slots=300, warmup=0, keep=300, thin=1, step_size=5.0)
    bad = ~np.isfinite(every["w"]).all(axis=2)  # (chain, draw)
    first = [int(np.argmax(b)) if b.any() else 10**9 for b in bad]
    assert (step, chain) == min((s, c) for c, s in enumerate(first))
    assert np.isfinite(every["b"][:, :step + 1]).all()  # so "w" is the leaf to name


def test_finite_run_reports_nothing():
    state, _ = sample(slots=10)
    assert runner.first_nonfinite(state, named_leaves(state.first_bad_step)) is None


def test_sgld_stationary_variance_blackjax_convention():
    """SGLD on N(2, 1) with step eps: stationary variance 1 / (1 - eps/2) under blackjax's
    update theta + eps grad + sqrt(2 eps) xi."""
    eps = 0.5
    _, draws = sample(slots=100, warmup=100, keep=20000, thin=1, num_chains=4, step_size=eps,
                      position={"w": jnp.zeros(3)})
    w = draws["w"]
    expected = 1 / (1 - eps / 2)
    # AR(1) with coefficient rho = 1 - eps: the sample variance's variance grows by
    # (1 + rho^2) / (1 - rho^2), the sample mean's by (1 + rho) / (1 - rho)
    rho = 1 - eps
    n = w.size
    rel_se = np.sqrt(2 / n * (1 + rho**2) / (1 - rho**2))
    assert abs(w.var() / expected - 1) < 4 * rel_se
    assert abs(w.mean() - 2.0) < 4 * np.sqrt(expected / n * (1 + rho) / (1 - rho))


@pytest.mark.slow
def test_jobs_of_a_sweep_in_one_process_share_their_programs(run_in_process, monkeypatch):
    """A second job that differs in `seed` and the step size (arguments of the program) runs
    the first job's compiled chunk and start programs, and samples exactly what it samples
    alone; a job that differs in a value the program holds (the likelihood's sigma) compiles
    its own."""
    import headbayes

    compiled = []
    original = runner._compile
    monkeypatch.setattr(runner, "_compile", lambda *a: compiled.append(1) or original(*a))
    programs.forget()
    base = ["+experiment=sin_head_nuts", "sampler.warmup=30", "sampler.keep=20"]
    run_in_process(*base, name="first")
    other = [*base, "seed=3", "sampler.step_size=0.02"]
    _, _, shared = run_in_process(*other, name="second")
    assert len(compiled) == 1
    run_in_process(*base, "likelihood.sigma=0.1", name="third")
    assert len(compiled) == 2
    programs.forget()
    _, _, alone = run_in_process(*other, name="alone")
    assert len(compiled) == 3
    for leaf in ("output_layer.weight", "output_layer.bias"):
        np.testing.assert_array_equal(headbayes.load_run(shared).draws(leaf),
                                      headbayes.load_run(alone).draws(leaf))
