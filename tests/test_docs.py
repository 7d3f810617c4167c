"""Docs that cannot drift: the config table of docs/config.md is the schema's, the links between
the README and the docs pages resolve, and the README's examples work as printed."""

import importlib.util
import re
from pathlib import Path

import pytest

import headbayes
from headbayes.core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
CONFIG_DOC = (ROOT / "docs" / "config.md").read_text()


def load_script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_config_table_is_generated_from_the_schema():
    table = load_script("config_table")
    assert table.with_table(CONFIG_DOC) == CONFIG_DOC, "run: python scripts/config_table.py"
    assert "| `body.optimizer`, `body.lr`, `body.steps` | adam, 0.01, 2000 |" in CONFIG_DOC
    assert "| `sampler.mass_matrix` | dense |" in CONFIG_DOC


def _anchors(text: str) -> set[str]:
    """GitHub's anchors of the markdown headings in `text`."""
    anchors = set()
    for heading in re.findall(r"^#+ (.+)$", re.sub(r"```.*?```", "", text, flags=re.S), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


def test_the_docs_links_resolve():
    """Every relative link of the README and the docs pages names a file of the repository (and,
    with #anchor, one of its headings), and every page a text names as NAME.md exists."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        text = page.read_text()
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            found = (page.parent / path).resolve() if path else page
            if not found.exists():
                broken.append(f"{page.name}: {target}")
            elif anchor and found.suffix == ".md" and anchor not in _anchors(found.read_text()):
                broken.append(f"{page.name}: {target} (no such heading)")
        for name in re.findall(r"[\w./-]*\w\.md\b", text):
            if not ((page.parent / name).exists() or (ROOT / name).exists()):
                broken.append(f"{page.name}: {name}")
    assert not broken, broken


def readme_experiment() -> tuple[str, str]:
    """(file name, text) of the README's "Your own experiments" example."""
    section = README.split("### Your own experiments", 1)[1]
    text = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    name = re.search(r"configs/experiment/(\w+)\.yaml", text).group(1)
    return name, text


def test_the_readme_experiment_works_as_printed(tmp_path, monkeypatch):
    name, text = readme_experiment()
    (tmp_path / "configs" / "experiment").mkdir(parents=True)
    (tmp_path / "configs" / "experiment" / f"{name}.yaml").write_text(text)
    monkeypatch.chdir(tmp_path)
    cfg = headbayes.compose([f"+experiment={name}"])
    assert cfg.mask.include == ["*.bias"] and cfg.sampler.step_size == 3.0e-4


@pytest.mark.parametrize("header", ["# my experiment\n# @package _global_\n", ""])
def test_an_experiment_without_the_header_first_says_so(tmp_path, monkeypatch, header):
    (tmp_path / "configs" / "experiment").mkdir(parents=True)
    (tmp_path / "configs" / "experiment" / "mine.yaml").write_text(
        header + "defaults:\n  - /experiment/sin_head\nseed: 3\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="must start with the line `# @package _global_`"):
        headbayes.compose(["+experiment=mine"])
