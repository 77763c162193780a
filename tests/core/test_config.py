import pytest

from collapse_diffusion.core.errors import UserError
from collapse_diffusion.loop.experiment import load_config, save_config


def write(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def test_defaults_and_overrides(tmp_path):
    cfg = load_config(write(tmp_path, "train: {steps: 7}\n"), ["data.n=50", "study.paradigms=[replace, fresh]"])
    assert cfg.train.steps == 7 and cfg.data.n == 50 and cfg.study.paradigms == ("replace", "fresh")


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
        load_config(None, ["study.oversample=0.5", "study.arms=[{name: g, selector: greedy}]", "study.baseline=g"])
    with pytest.raises(UserError, match="unique name"):
        load_config(None, ["study.arms=[{name: a}, {name: a}]"])


def test_roundtrip(tmp_path):
    cfg = load_config(None, ["seed=3", "study.arms=[{name: t, selector: tdf, tau0: 5}]", "study.baseline=t"])
    save_config(cfg, tmp_path / "s.yaml")
    assert load_config(tmp_path / "s.yaml") == cfg


def test_keys_an_arm_never_reads_are_refused_by_name(tmp_path):
    with pytest.raises(UserError, match="selector 'greedy' does not read 'base'"):
        load_config(write(tmp_path, "study: {arms: [{name: vanilla}, {name: g, selector: greedy, base: tdf, "
                                    "verify: reject}]}\n"))
    with pytest.raises(UserError, match="selector 'random' does not read 'tau0'"):  # not a tdf message
        load_config(None, ["study.arms=[{name: vanilla, tau0: -1}]"])
    with pytest.raises(UserError, match="tdf needs tau0 > 0"):
        load_config(None, ["study.arms=[{name: vanilla}, {name: t, selector: tdf, tau0: -1}]"])
    # a filter reads its base selector's keys too
    cfg = load_config(None, ["study.arms=[{name: vanilla}, {name: m, selector: memfilter, base: tdf, tau0: 500}]"])
    assert cfg.study.arms[1].tau0 == 500 and cfg.study.arms[1].picker.name == "tdf"


def test_baseline_must_name_an_arm():
    with pytest.raises(UserError, match="study.baseline 'vanilla' is not an arm"):
        load_config(None, ["study.arms=[{name: anchor1, real_anchor: 1}]"])
    assert load_config(None, ["study.arms=[{name: a}, {name: b}]", "study.baseline=b"]).study.baseline == "b"


def test_base_inheritance_and_its_errors(tmp_path):
    (tmp_path / "parent.yaml").write_text("train: {steps: 7, lr: 0.01}\ndata: {n: 40}\n")
    child = write(tmp_path, "base: parent.yaml\ntrain: {steps: 9}\n")
    cfg = load_config(child)
    assert (cfg.train.steps, cfg.train.lr, cfg.data.n) == (9, 0.01, 40)
    (tmp_path / "loop.yaml").write_text("base: c.yaml\n")
    write(tmp_path, "base: loop.yaml\n")
    with pytest.raises(UserError, match="leads back to itself"):
        load_config(tmp_path / "c.yaml")


def test_duplicate_keys_binary_files_and_moved_keys_are_refused(tmp_path):
    with pytest.raises(UserError, match="key 'steps' is given twice"):
        load_config(write(tmp_path, "train:\n  steps: 5\n  steps: 6\n"))
    (tmp_path / "b.yaml").write_bytes(bytes(range(256)))
    with pytest.raises(UserError, match="not a text file"):
        load_config(tmp_path / "b.yaml")
    with pytest.raises(UserError, match="'train.device' has moved to 'runtime.device'"):
        load_config(write(tmp_path, "train: {device: cpu}\n"))
    with pytest.raises(UserError, match=r"--set 'study.workers=2'.*moved to 'runtime.workers'"):
        load_config(None, ["study.workers=2"])


def test_a_run_config_written_by_the_earlier_layout_still_loads(tmp_path):
    old = write(tmp_path, "train: {steps: 5, device: cpu, threads: 1}\nstudy:\n  workers: 2\n  arms:\n"
                          "  - {name: vanilla, selector: random, tau0: 2000.0, alpha: 0.95, base: random, "
                          "verify: top}\n")
    cfg = load_config(old, saved=True)
    assert (cfg.runtime.device, cfg.runtime.threads, cfg.runtime.workers, cfg.train.steps) == ("cpu", 1, 2, 5)
    with pytest.raises(UserError):
        load_config(old)  # a user's file is held to the current layout


def test_cross_field_refusals_name_the_fix():
    from collapse_diffusion.loop.experiment import check_study
    with pytest.raises(UserError, match="below the r\\*\\(N \\+ h\\) = 64 candidates"):
        check_study(load_config(None, ["data.n=32", "eval.n_generated=40", "eval.membership=false"]))
    with pytest.raises(UserError, match="below the r\\*\\(N \\+ h\\) = 192 candidates a cycle of N = 32 "
                                        "and h = 64 held-out"):
        check_study(load_config(None, ["data.n=32", "eval.n_generated=40"]))
    for bad, words in (("eval.membership_holdout=-3", "membership_holdout must be >= 0"),
                       ("eval.membership_draws=0", "membership_draws must be >= 1"),
                       ("eval.planted=1", "planted must be at least 4")):
        with pytest.raises(UserError, match=words):
            load_config(None, [bad])
    with pytest.raises(UserError, match="data.fit is none"):
        load_config(None, ["data.resolution=16"])
    with pytest.raises(UserError, match="seed must be a non-negative"):
        load_config(None, ["seed=-1"])
