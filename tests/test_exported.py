"""The chunk program stored on disk (`headbayes.engine.exported`): loaded only when it is the same
program, and running the same bits as the program traced."""

import json
import subprocess
import sys
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from headbayes.engine import exported

from headbayes.engine import programs


def _pair(a, b):
    return {"sum": a + b, "product": a * b}


def _args(n: int = 3):
    return (jnp.arange(n, dtype=jnp.float32), jnp.full((n,), 2.0, jnp.float32))


def test_a_program_is_stored_then_loaded_and_computes_the_same(tmp_path):
    args = _args()
    structure = jax.tree.structure(_pair(*args))
    path = tmp_path / "p.bin"
    traced = exported.compile_program(_pair, args, structure, path)
    loaded = exported.compile_program(_pair, args, structure, path)
    assert (traced.source, loaded.source) == ("traced", "loaded")
    for name in ("sum", "product"):
        np.testing.assert_array_equal(loaded(*args)[name], traced(*args)[name])
    np.testing.assert_array_equal(loaded(*args)["product"], [0.0, 2.0, 4.0])


def test_a_damaged_or_mismatched_stored_program_is_traced_again(tmp_path):
    """A flipped byte (the digest no longer holds), a cut file, or arguments of another
    shape: traced again, and stored anew (the next load succeeds)."""
    args = _args()
    structure = jax.tree.structure(_pair(*args))
    path = tmp_path / "p.bin"
    exported.compile_program(_pair, args, structure, path)
    content = path.read_bytes()
    damaged = bytearray(content)
    damaged[-10] ^= 1
    for bad in (bytes(damaged), content[: len(content) // 2], b""):
        path.write_bytes(bad)
        assert exported.compile_program(_pair, args, structure, path).source == "traced"
        assert exported.compile_program(_pair, args, structure, path).source == "loaded"
    longer = _args(4)
    program = exported.compile_program(_pair, longer, jax.tree.structure(_pair(*longer)), path)
    assert program.source == "traced"
    np.testing.assert_array_equal(program(*longer)["sum"], [2.0, 3.0, 4.0, 5.0])


def test_outputs_of_another_structure_than_announced_are_compiled_directly(tmp_path):
    args = _args()
    wrong = jax.tree.structure((args[0], args[1]))
    assert exported.compile_program(_pair, args, wrong, tmp_path / "p.bin") is None
    assert not (tmp_path / "p.bin").exists()


def test_the_stored_program_is_found_by_config_and_training_data(tmp_path):
    """Another program key, other training values (same shapes) or another cache: another
    file; the compilation cache off: none."""
    x = np.linspace(0, 1, 8, dtype=np.float32)[:, None]
    data = SimpleNamespace(x_train=x, y_train=np.sin(x))
    path = exported.program_path(tmp_path, "config A", data)
    assert path.parent == tmp_path / "headbayes"
    assert exported.program_path(tmp_path, "config A", data) == path
    assert exported.program_path(tmp_path, "config B", data) != path
    moved = SimpleNamespace(x_train=x, y_train=np.sin(x) + np.float32(1e-7))
    assert exported.program_path(tmp_path, "config A", moved) != path
    assert exported.program_path(tmp_path / "other", "config A", data).name == path.name
    assert exported.program_path(None, "config A", data) is None


def test_a_run_loads_its_stored_program_and_samples_the_same_chain(run_in_process,
                                                                  monkeypatch, tmp_path):
    """The second run of a config loads the first one's program (meta.json `chunk_program`)
    and samples the same bits; so does a run with the compilation cache off, which traces."""
    import headbayes

    monkeypatch.setenv("HEADBAYES_COMPILE_CACHE", str(tmp_path / "cache"))
    base = ["+experiment=sin_head", "sampler.warmup=30", "sampler.keep=20"]
    runs = {}
    for name, cache in (("first", str(tmp_path / "cache")), ("second", str(tmp_path / "cache")),
                        ("off", "")):
        monkeypatch.setenv("HEADBAYES_COMPILE_CACHE", cache)
        programs.forget()  # as a new process
        _, _, runs[name] = run_in_process(*base, name=name)
    sources = {name: json.loads((d / "meta.json").read_text())["chunk_program"]
               for name, d in runs.items()}
    assert sources == {"first": "traced", "second": "loaded", "off": "traced"}
    assert len(list((tmp_path / "cache" / "headbayes").glob("*.bin"))) == 1
    for leaf in ("output_layer.weight", "output_layer.bias"):
        first = headbayes.load_run(runs["first"]).draws(leaf)
        for name in ("second", "off"):
            np.testing.assert_array_equal(headbayes.load_run(runs[name]).draws(leaf), first)


@pytest.mark.slow
def test_an_sgld_run_with_a_stored_program_does_not_import_blackjax(tmp_path):
    """Loading the program spares its tracing, and with it blackjax's import (SGLD's start
    needs no computation); the run that stored it imported it."""
    script = (
        "import sys, pathlib\n"
        "import headbayes\n"
        "from headbayes.app.session import sample\n"
        "cfg = headbayes.compose(['+experiment=sin_head', 'sampler.warmup=10',\n"
        "                         'sampler.keep=5', 'report.plots=false'])\n"
        "meta = sample(cfg, pathlib.Path(sys.argv[1]), lambda *a: None).meta\n"
        "print(meta['chunk_program'], 'blackjax' in sys.modules)\n")
    env = {"HEADBAYES_COMPILE_CACHE": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}
    printed = [subprocess.run([sys.executable, "-c", script, str(tmp_path / name)],
                              capture_output=True, text=True, env=env, check=True).stdout.split()
               for name in ("first", "second")]
    assert printed == [["traced", "True"], ["loaded", "False"]]


def test_no_program_is_stored_for_code_from_outside_headbayes(monkeypatch):
    """A user's `model._target_` factory, or any option a user's code registered: the digest
    does not cover their source, so such runs are never stored."""
    import dataclasses

    from headbayes import compose
    from headbayes.posterior.likelihoods import LIKELIHOODS
    from headbayes.posterior.priors import PRIORS, PriorOptions
    from headbayes.models import TargetModel

    cfg = compose(["+experiment=sin_head"])
    assert exported.only_own_code(cfg)
    assert not exported.only_own_code(dataclasses.replace(cfg, model=TargetModel("m.f")))
    monkeypatch.setattr(LIKELIHOODS, "_entries", dict(LIKELIHOODS._entries))
    LIKELIHOODS.register("users_own", dataclasses.make_dataclass("Users", []))(lambda o: None)
    assert not exported.only_own_code(cfg)
    monkeypatch.undo()
    assert exported.only_own_code(cfg)
    monkeypatch.setattr(PRIORS, "_entries", dict(PRIORS._entries))
    PRIORS.register("users_own", PriorOptions)(lambda o: None)  # a prior family's density
    assert not exported.only_own_code(cfg)


def test_model_arrays_are_kept_then_read_and_a_damaged_file_is_computed_again(tmp_path):
    structure = {"w": jax.ShapeDtypeStruct((2, 3), jnp.float32),
                 "b": jax.ShapeDtypeStruct((3,), jnp.float32)}
    calls = []

    def compute():
        calls.append(1)
        return {"w": jnp.arange(6.0, dtype=jnp.float32).reshape(2, 3) / 7,
                "b": jnp.full((3,), 0.1, jnp.float32)}

    first = exported.kept_model_arrays(tmp_path, "mlp 16", structure, compute)
    again = exported.kept_model_arrays(tmp_path, "mlp 16", structure, compute)
    assert len(calls) == 1
    for name in ("w", "b"):
        np.testing.assert_array_equal(again[name], first[name])
    exported.kept_model_arrays(tmp_path, "mlp 32", structure, compute)
    assert len(calls) == 2  # other options: another file
    for kept in (tmp_path / "headbayes").glob("model-*.npz"):
        kept.write_bytes(b"not an npz")
    exported.kept_model_arrays(tmp_path, "mlp 16", structure, compute)
    assert len(calls) == 3
    exported.kept_model_arrays(None, "mlp 16", structure, compute)
    assert len(calls) == 4


def test_the_kept_programs_digest_covers_every_module_of_headbayes():
    """A change to any module, in any layer, makes a kept program's digest differ (the source
    once covered only the modules beside exported.py)."""
    from pathlib import Path

    import headbayes
    from headbayes.engine.exported import source_files

    package = Path(headbayes.__file__).resolve().parent
    assert set(source_files()) == set(package.rglob("*.py"))
    assert {p.parent.name for p in source_files()} >= {"core", "models", "samplers", "job"}


def test_kept_model_arrays_changed_on_disk_are_computed_again(tmp_path):
    """A model-*.npz in the cache edited to other values of the same shapes (a chain would
    silently start elsewhere) fails its digest and is computed again."""
    from headbayes.engine.exported import kept_model_arrays

    structure = {"w": jax.ShapeDtypeStruct((3,), jnp.float32)}
    true = {"w": jnp.arange(3, dtype=jnp.float32)}
    assert np.array_equal(kept_model_arrays(tmp_path, "k", structure, lambda: true)["w"],
                          true["w"])
    (path,) = (tmp_path / "headbayes").glob("model-*.npz")
    saved = dict(np.load(path))
    saved["a0"] = saved["a0"] + 1
    np.savez(path, **saved)
    again = kept_model_arrays(tmp_path, "k", structure, lambda: true)
    assert np.array_equal(again["w"], true["w"])
    kept = kept_model_arrays(tmp_path, "k", structure, lambda: 1 / 0)  # kept anew, not computed
    assert np.array_equal(kept["w"], true["w"])


def test_kept_model_arrays_of_another_model_are_computed_again(tmp_path):
    """jc11: another model's model-*.npz (another seed: same shapes, a valid digest of its own
    arrays) copied over this one's was read as this model's."""
    import shutil

    from headbayes.engine.exported import kept_model_arrays

    structure = {"w": jax.ShapeDtypeStruct((3,), jnp.float32)}
    mine, theirs = {"w": jnp.zeros(3, jnp.float32)}, {"w": jnp.ones(3, jnp.float32)}
    kept_model_arrays(tmp_path, "seed 0", structure, lambda: mine)
    before = set((tmp_path / "headbayes").glob("model-*.npz"))
    kept_model_arrays(tmp_path, "seed 1", structure, lambda: theirs)
    (mine_path,), (their_path,) = before, set((tmp_path / "headbayes").glob("model-*.npz")) - before
    shutil.copyfile(their_path, mine_path)
    again = kept_model_arrays(tmp_path, "seed 0", structure, lambda: mine)
    assert np.array_equal(again["w"], mine["w"])
