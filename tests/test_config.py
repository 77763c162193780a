import pytest

from collapse_diffusion.config import ExperimentConfig, load_config, save_config
from collapse_diffusion.errors import UserError


def write(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def test_defaults_and_overrides(tmp_path):
    cfg = load_config(write(tmp_path, "train: {steps: 7}\n"), ["data.n=50", "study.paradigms=[replace, fresh]"])
    assert cfg.train.steps == 7 and cfg.data.n == 50 and cfg.study.paradigms == ("replace", "fresh")
    assert isinstance(cfg, ExperimentConfig)


def test_unknown_key_names_key_and_file(tmp_path):
    p = write(tmp_path, "train: {stepz: 7}\n")
    with pytest.raises(UserError, match=r"c\.yaml: unknown key 'train\.stepz'"):
        load_config(p)


def test_wrong_type_names_key(tmp_path):
    with pytest.raises(UserError, match=r"'train\.steps' must be int"):
        load_config(write(tmp_path, "train: {steps: many}\n"))
    with pytest.raises(UserError, match=r"'study\.arms\[0\]\.selector'"):
        load_config(write(tmp_path, "study: {arms: [{name: a, selector: best}]}\n"))
    with pytest.raises(UserError, match="not valid YAML"):
        load_config(write(tmp_path, "train: {steps: [\n"))


def test_cross_field_checks(tmp_path):
    with pytest.raises(UserError, match="oversample"):
        load_config(None, ["study.oversample=0.5", "study.arms=[{name: g, selector: greedy}]"])
    with pytest.raises(UserError, match="unique name"):
        load_config(None, ["study.arms=[{name: a}, {name: a}]"])


def test_roundtrip(tmp_path):
    cfg = load_config(None, ["seed=3", "study.arms=[{name: t, selector: tdf, tau0: 5}]"])
    save_config(cfg, tmp_path / "s.yaml")
    assert load_config(tmp_path / "s.yaml") == cfg
