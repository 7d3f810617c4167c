"""One `headbayes run` for a benchmark script, in a subprocess as a user types it."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def headbayes_run(overrides: list[str], run_dir: Path) -> dict:
    """Run `headbayes run OVERRIDES report.plots=false` into `run_dir` (its outputs beside it);
    {"metrics": ..., "meta": ..., "mask": ...} from its JSON files. RuntimeError with the end
    of stderr when it fails (a warning verdict still exits 0)."""
    env = {**os.environ, "HEADBAYES_OUTPUT_DIR": str(Path(run_dir).parent)}
    result = subprocess.run([sys.executable, "-m", "headbayes", "run", *overrides,
                             "report.plots=false", f"hydra.run.dir={run_dir}"],
                            cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"headbayes run {' '.join(overrides)} exited {result.returncode}: "
                           f"{result.stderr[-2000:]}")
    return {name: json.loads((Path(run_dir) / f"{name}.json").read_text())
            for name in ("metrics", "meta", "mask")}
