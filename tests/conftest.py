import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def headbayes(tmp_path):
    """Run the CLI in a subprocess (outputs under tmp_path); returns CompletedProcess."""

    def run(*args, cwd=None, check_code=None):
        env = {**os.environ, "HEADBAYES_OUTPUT_DIR": str(tmp_path / "outputs"),
               "COLUMNS": "200"}
        result = subprocess.run([sys.executable, "-m", "headbayes", *map(str, args)],
                                capture_output=True, text=True, cwd=cwd or tmp_path, env=env)
        if check_code is not None:
            assert result.returncode == check_code, result.stdout + result.stderr
        return result

    return run
