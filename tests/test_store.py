import json

import numpy as np
import pytest

from headbayes.core import store
from headbayes.core.errors import RunDirError


def write_chain(run_dir, parts=2):
    writer = store.ChainWriter(run_dir)
    rng = np.random.default_rng(0)
    chunks = [{"a.weight": rng.normal(size=(2, 3, 4, 1)).astype(np.float32),
               "a.bias": rng.normal(size=(2, 3, 1)).astype(np.float32)} for _ in range(parts)]
    for i, chunk in enumerate(chunks):
        writer.commit(3 * (i + 1), [np.arange(3.0) + i], {"grad_evals_sampling": i}, chunk)
    return chunks


def test_chain_round_trip(tmp_path):
    chunks = write_chain(tmp_path)
    chain = store.load_chain(tmp_path)
    for key in ("a.weight", "a.bias"):
        np.testing.assert_array_equal(chain[key], np.concatenate([c[key] for c in chunks], axis=1))
    manifest = json.loads((tmp_path / store.MANIFEST).read_text())
    assert [p["draws"] for p in manifest["parts"]] == [3, 3]
    assert not list(tmp_path.rglob("*.tmp"))


def test_npz_and_json_round_trip(tmp_path):
    arrays = {"x.weight": np.arange(6.0).reshape(2, 3)}
    store.write_npz(tmp_path / "p.npz", arrays)
    loaded = store.read_npz(tmp_path / "p.npz")
    np.testing.assert_array_equal(loaded["x.weight"], arrays["x.weight"])
    store.write_json(tmp_path / "m.json", {"a": 1.5})
    assert store.read_json(tmp_path / "m.json") == {"a": 1.5}


def test_flipped_byte_is_detected(tmp_path):
    write_chain(tmp_path)
    part = tmp_path / "chain" / "part-00001.npz"
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0xFF
    part.write_bytes(bytes(data))
    with pytest.raises(RunDirError, match="part-00001.npz: checksum mismatch"):
        store.load_chain(tmp_path)


def test_missing_part_is_detected(tmp_path):
    write_chain(tmp_path)
    (tmp_path / "chain" / "part-00000.npz").unlink()
    with pytest.raises(RunDirError, match="missing chain file .*part-00000.npz"):
        store.load_chain(tmp_path)


def test_object_arrays_are_refused(tmp_path):
    path = tmp_path / "params.npz"
    np.savez(path, bad=np.array([{"x": 1}], dtype=object))
    with pytest.raises(RunDirError, match="corrupt file .*params.npz"):
        store.read_npz(path)


def test_empty_manifest_is_an_error(tmp_path):
    store.ChainWriter(tmp_path)
    with pytest.raises(RunDirError, match="no committed draws"):
        store.load_chain(tmp_path)


def test_checkpoint_round_trip_and_leftovers(tmp_path):
    write_chain(tmp_path, parts=3)
    resumed = store.ChainWriter(tmp_path, resume=True)
    assert resumed.checkpoint["next_step"] == 9
    assert resumed.checkpoint["counts"] == {"grad_evals_sampling": 2}
    np.testing.assert_array_equal(resumed.load_state()[0], np.arange(3.0) + 2)
    # only the committed checkpoint file is kept
    assert [p.name for p in (tmp_path / "chain").glob("state-*")] == ["state-000000009.npz"]


def test_corrupt_checkpoint_is_detected(tmp_path):
    write_chain(tmp_path)
    state = next((tmp_path / "chain").glob("state-*"))
    state.write_bytes(state.read_bytes()[:-5])
    with pytest.raises(RunDirError, match="corrupt checkpoint file .*state-"):
        store.ChainWriter(tmp_path, resume=True).load_state()


def test_a_files_digest_is_computed_in_blocks(tmp_path):
    """C37: a data copy was read whole to check its digest (2.2 GB resident for a sparse
    2 GB file)."""
    import hashlib
    import tracemalloc

    path = tmp_path / "sparse.csv"
    with open(path, "wb") as f:
        f.truncate(50 * 2**20)
    tracemalloc.start()
    digest = store.sha256_of(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert digest == hashlib.sha256(bytes(50 * 2**20)).hexdigest()
    assert peak < 4 * 2**20
