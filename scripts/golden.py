"""Golden hashes: short versions of every shipped experiment (and every sampler on sin_head),
each run as a user types it (`headbayes run ...` in a fresh process), and the SHA-256 of the
chain (every array of the chain parts, joined along the draws: where a chunk ends depends on
the machine's speed, the draws do not), of `params.npz` and of `metrics.json`.

    python scripts/golden.py            # compare with tests/golden.json; exit 1 on a difference
    python scripts/golden.py --write    # record tests/golden.json anew
    python scripts/golden.py --only sin_head,sin_lora
    python scripts/golden.py --only digits_cnn_head --add-variant   # see below

tests/golden.json was recorded on an x86-64 CPU with AVX-512. Some cases give other bits on
another CPU (the digits CNN's convolutions and the Laplace sampler's linear algebra differ
between AVX2 and AVX-512 kernels): tests/golden_variants.json (absent: none) holds such a
machine's hashes, and a case matches its record or one of its variants. Add one only after
checking that the code before your change gives the same variant on that machine.

A behaviour-preserving change leaves every hash as it was (`tests/test_golden.py` runs a few of
these cases in `make test` and all of them in `make test-all`).
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden.json"
VARIANTS = ROOT / "tests" / "golden_variants.json"  # {case: [{"machine": ..., "hashes": ...}]}

SHORT = ["report.plots=false"]
MCMC = ["sampler.warmup=60", "sampler.keep=40"]
PRETRAIN = ["body.steps=200"]

# name -> overrides after +experiment=... (or a sampler=... run of sin_head)
CASES = {
    "sin_head": ["+experiment=sin_head", *MCMC],
    "sin_head_nuts": ["+experiment=sin_head_nuts", *MCMC],
    "sin_head_pretrained": ["+experiment=sin_head_pretrained", *MCMC, *PRETRAIN],
    "sin_head_joint": ["+experiment=sin_head_joint", *MCMC, *PRETRAIN],
    "sin3_head": ["+experiment=sin3_head", *MCMC],
    "gap_head": ["+experiment=gap_head", *MCMC],
    "friedman_head": ["+experiment=friedman_head", *MCMC],
    "sin_gibbs": ["+experiment=sin_gibbs", *MCMC],
    "sin_gibbs_seed": ["+experiment=sin_gibbs_seed", *MCMC],
    "sin_mixed": ["+experiment=sin_mixed", *MCMC],
    "sin_lora": ["+experiment=sin_lora", *MCMC],
    "sin_lora_alpha8": ["+experiment=sin_lora", "adapters.alpha=8.0", *MCMC],
    "moons_head": ["+experiment=moons_head", *MCMC, *PRETRAIN],
    "growing_noise_head": ["+experiment=growing_noise_head", *MCMC, *PRETRAIN],
    "digits_cnn_head": ["+experiment=digits_cnn_head", *MCMC, "body.steps=50"],
    "uci": ["+experiment=uci", "data.root=data/uci/yacht", "data.split=0", "body.steps=200",
            "sampler.keep=50"],
    "tabular": ["+experiment=tabular", "data.path={table}", "data.target=y", "body.steps=200",
                "sampler.keep=50"],
    **{f"sampler_{name}": ["+experiment=sin_head", f"sampler={name}", *extra]
       for name, extra in {
           "hmc": MCMC, "nuts": MCMC, "mala": MCMC, "sghmc": MCMC, "vi": MCMC,
           "exact": ["sampler.keep=50"], "laplace": ["sampler.warmup=100", "sampler.keep=50"],
       }.items()},
    "nuts_sampled_noise": ["+experiment=sin_head", "sampler=nuts", *MCMC,
                           "likelihood.sigma=sampled", "likelihood.reduction=sum"],
    "exact_evidence": ["+experiment=sin_head", "sampler=exact", "sampler.keep=50",
                       "likelihood.sigma=evidence", "prior.sigma=evidence",
                       "likelihood.reduction=sum"],
}

HASHED = ("params.npz", "metrics.json")


def write_table(path: Path) -> None:
    """A small csv with a header: y from three inputs, fixed seed."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 3))
    y = np.sin(x[:, 0]) + 0.5 * x[:, 1] * x[:, 2] + 0.1 * rng.normal(size=120)
    rows = ["a,b,c,y"] + [",".join(f"{v:.6f}" for v in (*xi, yi)) for xi, yi in zip(x, y)]
    path.write_text("\n".join(rows) + "\n")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def chain_digest(chain_dir: Path) -> str:
    """SHA-256 of every array of the chain parts, each joined over the parts in order (leaves
    and statistics have axes (chain, draw, ...))."""
    arrays = {}
    for part in sorted(chain_dir.glob("part-*.npz")):
        with np.load(part, allow_pickle=False) as saved:
            for name in saved.files:
                arrays.setdefault(name, []).append(saved[name])
    digest = hashlib.sha256()
    for name in sorted(arrays):
        joined = np.concatenate(arrays[name], axis=min(1, arrays[name][0].ndim - 1))
        digest.update(f"{name}{joined.dtype.str}{joined.shape}".encode())
        digest.update(np.ascontiguousarray(joined).tobytes())
    return digest.hexdigest()


def hashes(run_dir: Path) -> dict:
    out = {name: sha256(run_dir / name) for name in HASHED if (run_dir / name).exists()}
    out["chain"] = chain_digest(run_dir / "chain")
    return out


def run_case(name: str, work: Path) -> dict:
    table = work / "table.csv"
    if not table.exists():
        write_table(table)
    run_dir = work / name
    overrides = [o.format(table=table) for o in CASES[name]]
    env = {**os.environ, "HEADBAYES_OUTPUT_DIR": str(work / "outputs")}
    result = subprocess.run(
        [sys.executable, "-m", "headbayes", "run", *overrides, *SHORT,
         f"hydra.run.dir={run_dir}"], cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{name}: exit {result.returncode}\n{result.stderr[-2000:]}")
    return hashes(run_dir)


def machine() -> str:
    """The CPU and library versions a variant was recorded with."""
    import platform

    import jax

    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        flags = ""
    isa = "avx512" if "avx512f" in flags else "avx2" if "avx2" in flags else "other"
    return f"{platform.machine()} {isa}, jax {jax.__version__}, numpy {np.__version__}"


def accepted(name: str, recorded: dict, variants: dict) -> list[dict]:
    """The hashes case `name` may give: its record, then its variants'."""
    return [recorded.get(name, {}), *(v["hashes"] for v in variants.get(name, []))]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="record tests/golden.json anew")
    parser.add_argument("--only", default="", help="comma-separated case names")
    parser.add_argument("--add-variant", action="store_true",
                        help="record this machine's hashes of the --only cases as variants")
    args = parser.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or list(CASES)
    if args.add_variant and not args.only:
        parser.error("--add-variant needs --only: the cases whose bits depend on the CPU")
    recorded = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    variants = json.loads(VARIANTS.read_text()) if VARIANTS.exists() else {}
    differ = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            got = run_case(name, Path(tmp))
            if args.write:
                recorded[name] = got
            elif args.add_variant:
                if got not in accepted(name, recorded, variants):
                    variants.setdefault(name, []).append({"machine": machine(), "hashes": got})
            elif got not in accepted(name, recorded, variants):
                differ.append(name)
                want = recorded.get(name, {})
                for key in sorted(set(got) | set(want)):
                    if got.get(key) != want.get(key):
                        print(f"{name}: {key} differs", file=sys.stderr)
            verdict = ("written" if args.write or args.add_variant
                       else "DIFFERS" if name in differ else "ok")
            print(f"{name}: {verdict}", flush=True)
    if args.write:
        GOLDEN.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
    if args.add_variant:
        VARIANTS.write_text(json.dumps(variants, indent=1, sort_keys=True) + "\n")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
