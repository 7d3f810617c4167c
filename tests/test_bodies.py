"""Body modes: one registry entry each (`job.bodies`), named alike everywhere."""

from pathlib import Path

import headbayes
from headbayes.config.typed import BODY_MODES
from headbayes.job.bodies import BODIES, body_entry


def test_every_body_mode_has_an_entry_and_a_config_file():
    files = {p.stem for p in (Path(headbayes.__file__).parent / "configs" / "body").glob("*.yaml")}
    assert set(BODIES.names()) == set(BODY_MODES) == files


def test_capabilities_of_the_shipped_modes():
    caps = {name: BODIES[name].caps for name in BODIES.names()}
    assert caps == {"frozen": frozenset(), "pretrained": {"learned", "map"},
                    "joint": {"learned", "moves"}}
    cfg = headbayes.compose(["+experiment=sin_head_pretrained"])
    assert body_entry(cfg).extras["before_sampling"] is not None
    assert "during_sampling" not in body_entry(cfg).extras
