"""Hydra plugin: adds ./configs of the working directory to headbayes' config search path.

This lets users keep their own experiments in ./configs/experiment/NAME.yaml and select them
with +experiment=NAME, with headbayes installed anywhere. Other Hydra apps are left alone.
"""

from pathlib import Path

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin

PACKAGE_CONFIGS = "pkg://headbayes.configs"


class HeadbayesSearchPathPlugin(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        if not any(entry.path == PACKAGE_CONFIGS for entry in search_path.get_path()):
            return
        local = Path.cwd() / "configs"
        packaged = Path(__file__).resolve().parents[2] / "headbayes" / "configs"
        if local.is_dir() and local.resolve() != packaged.resolve():
            search_path.append(provider="headbayes-working-dir", path=f"file://{local.resolve()}")
