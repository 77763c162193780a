"""The README's answer to "does copying rise, and does selection slow it?", checked on the shipped rows.

The numbers in the README's prose are value and slope tags that `scripts/results_pages.py` fills and
tests/test_results_pages.py keeps fresh; the words around them ("in any cell", "one cell of eight",
"every chain") are claims about all the rows, and each is asserted here."""
import pytest

from collapse_diffusion.analysis.factorial import cells, chain_signs, loo_threshold
from collapse_diffusion.analysis.stats import HELD_SEEDS, paired, slopes
from scripts.results_pages import shipped as rows


@pytest.fixture(scope="module")
def factorial():
    return rows("factorial")


def test_the_experiment_is_replicated_and_crossed(factorial):
    groups = cells(factorial)
    assert {d for d, _, _ in groups} == {"digits", "mnist16"} and len(groups) == 8
    for (data, sampler, steps), sub in groups.items():
        assert {r["seed"] for r in sub} == {0, 1, 2}, (data, sampler, steps)  # >= HELD_SEEDS everywhere
        assert {r["arm"] for r in sub} == {"vanilla", "greedy"} and max(r["cycle"] for r in sub) == 5
    assert len({(d, s) for d, s, _ in groups}) == 4  # both samplers on both data sets
    assert HELD_SEEDS == 3


def test_copying_does_not_rise_in_any_cell(factorial):
    for cell, sub in cells(factorial).items():
        copy = slopes(sub, "replace", "vanilla", "copy_share")
        probe = slopes(sub, "replace", "vanilla", "memorizer_share")
        assert copy.mean < 0, cell                      # "the copy share falls in all eight"
        assert probe.ci95[0] <= 0, cell                 # "no cell's memorizer-share interval lies above 0"


def test_vanilla_contracts_and_greedy_contracts_less(factorial):
    for cell, sub in cells(factorial).items():
        spacing = slopes(sub, "replace", "vanilla", "mean_nn_train", log=True)
        assert spacing.ci95[1] < 0, cell                                      # "its spacing ... fall"
        assert slopes(sub, "replace", "vanilla", "generalization_score", log=True).mean < 0, cell
        assert slopes(sub, "replace", "vanilla", "entropy_train").mean < 0, cell
        assert slopes(sub, "replace", "greedy", "mean_nn_train", log=True).mean > spacing.mean, cell
        assert paired(sub, "replace", "greedy", "vanilla", "entropy_train", cycle=5).ci95[0] > 0, cell
        if cell[0] == "digits" or cell[1] == "ddpm":                           # "fills with near-twins"
            assert slopes(sub, "replace", "vanilla", "duplicate_share_geometric").mean > 0, cell


def test_ddim_drifts_real_mnist_grey_and_ddpm_does_not(factorial):
    for (data, sampler, steps), sub in cells(factorial).items():
        if data != "mnist16":
            continue
        for arm in ("vanilla", "greedy"):
            last = [r["grey_share"] for r in sub if r["arm"] == arm and r["cycle"] == 5]
            first = [r["grey_share"] for r in sub if r["cycle"] == 1]
            assert max(first) < 0.02, (sampler, steps)       # clean digits on black at cycle 1
            if sampler == "ddim":
                assert sum(last) / len(last) > 0.5, (steps, arm)     # "most samples by cycle 5"
            else:
                assert max(last) < 0.02, (steps, arm)        # "ancestral DDPM keeps the backgrounds black"


def test_greedy_has_no_rise_to_slow(factorial):
    slower_by_probe = []
    for cell, sub in cells(factorial).items():
        copy = paired(sub, "replace", "greedy", "vanilla", "copy_share")
        assert copy.ci95[0] <= 0 <= copy.ci95[1], cell  # "spans 0 in every cell"
        probe = paired(sub, "replace", "greedy", "vanilla", "memorizer_share")
        if probe.ci95[1] < 0:
            slower_by_probe.append(cell)
    assert slower_by_probe == [("digits", "ddpm", 1000)]  # "one cell of eight"


def test_no_cheap_predictor_beats_guessing(factorial):
    copy = chain_signs(factorial, "copy_share")
    assert len(copy) == 24 and all(c["slope"] < 0 and c["agree"] for c in copy)
    probe = chain_signs(factorial, "memorizer_share")
    ys = [1 if c["slope"] > 0 else -1 for c in probe]
    common = max(ys.count(1), ys.count(-1)) / len(ys)
    assert sum(c["agree"] for c in probe) / len(probe) <= common
    for feature in ("cycle1_copy_share", "cycle1_memorizer_share"):
        assert loo_threshold([c[feature] for c in probe], ys) <= common, feature


def test_the_default_study_shows_what_the_readme_says():
    d = rows("digits")
    assert slopes(d, "replace", "vanilla", "copy_share").mean < 0
    assert slopes(d, "replace", "vanilla", "memorizer_share").mean < 0.025
    last = {r["arm"]: r for r in d if r["cycle"] == 5}
    first = next(r for r in d if r["cycle"] == 1)
    assert last["vanilla"]["mean_nn_train"] < first["mean_nn_train"]
    assert last["vanilla"]["duplicate_share_geometric"] > 0
    for arm in ("greedy", "tdf"):
        assert last[arm]["duplicate_share_geometric"] == 0
        assert last[arm]["entropy_train"] > last["vanilla"]["entropy_train"]
        assert last[arm]["generalization_score"] > last["vanilla"]["generalization_score"]


def test_under_accumulate_selection_holds_cycle_1s_state():
    a, p = rows("digits_accumulate"), "accumulate-subsample"
    assert {r["seed"] for r in a} == {0, 1, 2}
    assert slopes(a, p, "vanilla", "memorizer_share").ci95[1] < 0            # "vanilla's memorizer share falls"
    assert slopes(a, p, "vanilla", "mean_nn_train", log=True).ci95[1] < 0    # vanilla contracts
    for arm in ("greedy", "tdf"):
        for column in ("copy_share", "memorizer_share"):                    # "no arm's copying rises"
            lo, hi = slopes(a, p, arm, column).ci95
            assert lo <= 0 <= hi, (arm, column)
        lo, hi = slopes(a, p, arm, "mean_nn_train", log=True).ci95           # spacing held
        assert lo <= 0 <= hi, arm
        assert paired(a, p, arm, "vanilla", "entropy_train", cycle=5).ci95[0] > 0
        assert paired(a, p, arm, "vanilla", "copy_share", cycle=5).ci95[0] > 0   # "copy more ..., not less"
    real = [r["real_share"] for r in a if r["arm"] == "greedy" and r["cycle"] == 5]
    assert 0.45 <= sum(real) / len(real) <= 0.55                            # "half of it real"
