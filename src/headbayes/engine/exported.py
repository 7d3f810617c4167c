"""The chunk program kept on disk as a `jax.export` artifact, beside JAX's compilation cache.

A run whose program is stored loads it instead of tracing it: no sampler code runs and, for
samplers whose start needs no computation (SGLD, SGHMC), blackjax is not even imported; that
is most of a warm start's seconds (`docs/benchmarks.md`). Every program, stored or not, is
compiled from its exported module, so a run that loads it runs the same executable, to the
bit, as the run that traced it.

A stored program is found by a digest of all it depends on beyond its arguments'
values: the config (`programs.program_key`), headbayes' own source, the versions of the
libraries it traces, JAX's settings, the device and the compiler options, and the training
data's bytes. A file whose digest, format or argument shapes do not match is ignored (the
program is traced again and stored anew); a file that cannot be written costs only speed.
Code outside headbayes has no digest here: a run with a user's model (`model._target_`, or
an object given to `headbayes.fit`) or
with any model, likelihood or sampler registered outside headbayes is never stored.

The model's initial arrays are kept the same way, with the SHA-256 of their bytes inside the
file (`kept_model_arrays`; a changed file is computed again): a later run of the
same model options reads them instead of tracing and lowering the model's initialisation.
"""

import functools
import hashlib
from pathlib import Path

import numpy as np
from headbayes.core import store, xla
from headbayes.core.errors import RunDirError
from headbayes.models import MODELS, TargetModel
from headbayes.models.given import GivenModel
from headbayes.posterior.likelihoods import LIKELIHOODS
from headbayes.posterior.priors import PRIORS
from headbayes.samplers import SAMPLERS

__all__ = ["program_path", "compile_program", "only_own_code", "kept_model_arrays"]

FORMAT = b"headbayes exported program 1\n"
TRACED_LIBRARIES = ("jax", "jaxlib", "blackjax", "equinox", "optax", "numpy")


def program_path(cache_dir: Path | None, program_key: str, data) -> Path | None:
    """Where the chunk program of a run (its `programs.program_key` and dataset) is stored:
    `cache_dir/headbayes/DIGEST.bin`; None when the compilation cache is off (`cache_dir`
    None). Call it only where `only_own_code(cfg)`."""
    if cache_dir is None:
        return None
    digest = _digest(program_key)
    for array in (data.x_train, data.y_train):
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(memoryview(array).cast("B"))
    return Path(cache_dir) / "headbayes" / f"{digest.hexdigest()}.bin"


def kept_model_arrays(cache_dir: Path | None, model_key: str, structure, compute):
    """The model's arrays, as `compute()` returns them (a pytree of the array leaves of
    `structure`, whose leaves are `jax.ShapeDtypeStruct`s), read from
    `cache_dir/headbayes/model-DIGEST.npz` when kept there, else computed and kept there.
    `model_key` names everything they depend on but code and JAX (`models._key`)."""
    import jax
    import jax.numpy as jnp

    leaves, treedef = jax.tree.flatten(structure)
    if cache_dir is None or any(jax.dtypes.issubdtype(s.dtype, jax.dtypes.extended)
                                for s in leaves):  # PRNG keys: not kept in an .npz
        return compute()
    name = _digest("model", model_key).hexdigest()
    path = Path(cache_dir) / "headbayes" / f"model-{name}.npz"
    try:
        with np.load(path, allow_pickle=False) as saved:
            values = [saved[f"a{i}"] for i in range(len(leaves))]
            recorded = str(saved["sha256"])
        if (all((v.shape, v.dtype) == (s.shape, s.dtype) for v, s in zip(values, leaves))
                and recorded == _arrays_digest(name, values)):
            return jax.tree.unflatten(treedef, [jnp.asarray(v) for v in values])
    except Exception:  # noqa: BLE001 (not kept yet, damaged or changed: computed again)
        pass
    arrays = compute()
    values = [np.asarray(a) for a in jax.tree.leaves(arrays)]
    try:
        store.write_npz(path, {**{f"a{i}": v for i, v in enumerate(values)},
                               "sha256": np.array(_arrays_digest(name, values))})
    except RunDirError:
        pass
    return arrays


def _arrays_digest(name: str, values: list) -> str:
    """SHA-256 of the file's `name` (another model's file copied here does not match) and the
    arrays' dtypes, shapes and bytes, in order."""
    digest = hashlib.sha256(name.encode() + b"\0")
    for value in values:
        digest.update(f"{value.dtype.str}{value.shape}".encode())
        digest.update(np.ascontiguousarray(value).tobytes())
    return digest.hexdigest()


def only_own_code(cfg) -> bool:
    """True when the run traces headbayes' code only: its model is not a user's
    `model._target_` factory nor an object given to `headbayes.fit`, and every registered model, likelihood, prior family and sampler
    is built by a headbayes module (none was registered by a user's code)."""

    builders = [registry[name].build for registry in (MODELS, LIKELIHOODS, PRIORS, SAMPLERS)
                for name in registry.names()]
    return (not isinstance(cfg.model, (TargetModel, GivenModel))
            and all(build.__module__.startswith("headbayes.") for build in builders))


def _digest(*parts: str):
    """A sha256 of the format, `parts`, headbayes' source and the libraries' versions, and
    JAX's settings: what every kept file's name starts from."""
    digest = hashlib.sha256(FORMAT)
    for part in (*parts, _code_versions(), _jax_settings()):
        digest.update(part.encode() + b"\0")
    return digest


PACKAGE = Path(__file__).resolve().parents[1]  # src/headbayes


def source_files() -> list[Path]:
    """Every module of headbayes, in every layer: the source a kept program's digest covers."""
    return sorted(PACKAGE.rglob("*.py"))


@functools.cache
def _code_versions() -> str:
    """headbayes' source files (their bytes) and the traced libraries' versions."""
    from importlib import metadata

    package = PACKAGE
    digest = hashlib.sha256()
    for path in source_files():
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    versions = []
    for name in TRACED_LIBRARIES:
        try:
            versions.append(f"{name}={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name}=?")
    return digest.hexdigest() + " " + " ".join(versions)


def _jax_settings() -> str:
    """JAX's configuration values, the devices and the compiler options."""
    import jax

    device = jax.devices()[0]
    return repr((sorted(jax.config.values.items()), device.platform, device.device_kind,
                 len(jax.devices()), sorted(xla.compiler_options().items())))


def compile_program(fn, args: tuple, out_structure, path: Path | None):
    """`fn(*args)` compiled from its exported module (loaded from `path` when stored there,
    else traced, exported and stored there), as a callable of arguments shaped like `args`
    returning outputs of `out_structure`; its `source` is "loaded" or "traced". None when
    `fn` cannot be exported or its outputs are not of `out_structure` (compile it directly)."""
    import jax

    leaves, in_tree = jax.tree.flatten(args)
    exported = _load(path, leaves) if path is not None else None
    source = "loaded"
    if exported is None:
        blob, source = _export(fn, leaves, in_tree, out_structure), "traced"
        if blob is None:
            return None
        if path is not None:
            _store(path, blob)
        exported = jax.export.deserialize(blob)  # as a later run loads it: the same module
    compiled = xla.jit(exported.call).lower(*leaves).compile()

    def call(*args):
        return jax.tree.unflatten(out_structure, compiled(*jax.tree.leaves(args)))

    call.source = source
    return call


def _export(fn, leaves: list, in_tree, out_structure) -> bytearray | None:
    """The serialized export of `fn` over flat arguments and flat outputs; None when JAX
    cannot export it or its outputs are not of `out_structure`."""
    import jax

    traced_structure = []

    def flat(*leaves):
        out = fn(*jax.tree.unflatten(in_tree, leaves))
        traced_structure.append(jax.tree.structure(out))
        return jax.tree.leaves(out)

    try:
        exported = jax.export.export(xla.jit(flat))(*leaves)
        blob = exported.serialize()
    except (ImportError, NotImplementedError, ValueError, TypeError):  # not exportable
        return None
    return blob if traced_structure == [out_structure] else None


def _load(path: Path, leaves: list):
    """The stored program at `path` (a `jax.export.Exported`) when its digest and format
    hold and it takes arguments of the shapes and dtypes of `leaves`; else None."""
    import jax

    try:
        content = path.read_bytes()
    except OSError:
        return None
    header, _, blob = content.partition(b"\n\n")
    if header != FORMAT + hashlib.sha256(blob).hexdigest().encode():
        return None
    try:
        exported = jax.export.deserialize(bytearray(blob))
    except Exception:  # noqa: BLE001 (a damaged file is ignored, whatever the parser says)
        return None
    avals, wanted = exported.in_avals, [jax.typeof(leaf) for leaf in leaves]
    if len(avals) != len(wanted) or any(
            (a.shape, a.dtype) != (w.shape, w.dtype) for a, w in zip(avals, wanted)):
        return None
    return exported


def _store(path: Path, blob: bytearray) -> None:
    """Write the program with its digest, atomically; a failed write only costs speed."""
    try:
        store.write_bytes(path, FORMAT + hashlib.sha256(blob).hexdigest().encode() + b"\n\n"
                          + bytes(blob))
    except RunDirError:
        pass
