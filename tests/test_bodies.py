"""Body modes: one registry entry each (`models.bodies`), named alike everywhere; the training
is chosen by capability (`job.bodies`)."""

from pathlib import Path

import pytest

import headbayes
from headbayes.core.errors import ConfigError
from headbayes.job.bodies import before_sampling, during_sampling
from headbayes.job.joint import train_jointly
from headbayes.models.bodies import BODIES


def test_every_body_mode_has_an_entry_and_a_config_file():
    files = {p.stem for p in (Path(headbayes.__file__).parent / "configs" / "body").glob("*.yaml")}
    assert set(BODIES.names()) == files


def test_capabilities_choose_the_training():
    caps = {name: BODIES[name].caps for name in BODIES.names()}
    assert caps == {"frozen": frozenset(), "pretrained": {"learned", "map"},
                    "joint": {"learned", "moves"}}
    pretrained = headbayes.compose(["+experiment=sin_head_pretrained"])
    assert before_sampling(pretrained) is not None and during_sampling(pretrained) is None
    joint = headbayes.compose(["+experiment=sin_head_joint"])
    assert before_sampling(joint) is None and during_sampling(joint) is train_jointly
    frozen = headbayes.compose(["+experiment=sin_head"])
    assert before_sampling(frozen) is None and during_sampling(frozen) is None


def test_an_unknown_mode_names_the_registered_ones():
    with pytest.raises(ConfigError, match="`body.mode` must be one of frozen, pretrained, joint"):
        headbayes.compose(["+experiment=sin_head", "body.mode=warm"])
