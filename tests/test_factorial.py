"""The factorial experiment's reading: slopes per cell and arm with seed intervals, greedy against
vanilla paired by seed, and the pilot predictor's accuracy, on rows with planted trends."""
from collapse_diffusion.analysis.factorial import direction, pilot_lines, pilot_sign, slope_table
from collapse_diffusion.analysis.stats import estimate


def rows_with(trend_vanilla, trend_greedy, sampler="ddpm", seeds=(0, 1, 2)):
    out = []
    for seed in seeds:
        for arm, t in (("vanilla", trend_vanilla), ("greedy", trend_greedy)):
            for c in range(1, 6):
                out.append({"data": "digits", "sampler": sampler, "steps": 1000, "seed": seed, "paradigm": "replace",
                            "arm": arm, "cycle": c, "copy_share": 0.3 + t * (c - 1) + 0.01 * seed * (-1) ** c})
    return out


def test_a_rising_vanilla_and_a_flat_greedy_read_as_such():
    table = slope_table(rows_with(0.1, 0.0))
    vanilla = next(line for line in table if "| vanilla |" in line)
    greedy = next(line for line in table if "| greedy |" in line)
    diff = next(line for line in table if "greedy - vanilla" in line)
    assert "rises" in vanilla and "(suggested)" not in vanilla and "| 3 |" in vanilla
    assert "stays" in greedy and "greedy slower" in diff


def test_one_seed_is_only_suggested_and_a_wide_interval_unsettled():
    assert "(suggested)" in next(line for line in slope_table(rows_with(0.1, 0.0, seeds=(0,))) if "| vanilla |" in line)
    assert direction(estimate([0.2, -0.2, 0.1])) == "unsettled"
    assert direction(estimate([-0.05, -0.06, -0.055])) == "falls"


def test_the_pilot_predictor_is_scored_on_every_chain():
    rows = rows_with(0.1, 0.0) + rows_with(-0.1, 0.0, sampler="ddim")
    chains = pilot_sign(rows)
    assert len(chains) == 6 and all(c["agree"] for c in chains)
    assert "right in 6 of 6 chains" in pilot_lines(rows)[0]


def test_a_threshold_on_cycle1_is_scored_leave_one_out():
    from collapse_diffusion.analysis.factorial import loo_threshold, predictor_lines
    assert loo_threshold([0.1, 0.2, 0.3, 0.7, 0.8, 0.9], [-1, -1, -1, 1, 1, 1]) == 1.0
    assert loo_threshold([0.1, 0.2, 0.3], [-1, -1, -1]) is None  # one sign only: nothing to predict
    assert loo_threshold([0.1, 0.9, 0.2, 0.8], [1, -1, -1, 1]) < 0.5  # no rule: worse than a coin on held-out chains
    rows = []
    for seed, start in enumerate((0.2, 0.3, 0.6, 0.7)):   # chains that start high rise, low ones fall
        t = 0.1 if start > 0.5 else -0.1
        rows += [{"data": "digits", "sampler": "ddpm", "steps": 1000, "seed": seed, "paradigm": "replace",
                  "arm": "vanilla", "cycle": c, "copy_share": start + t * (c - 1), "memorizer_share": 0.5}
                 for c in range(1, 6)]
    line = next(x for x in predictor_lines(rows) if x.startswith("| copy_share"))
    assert "| 4 | 2 | 2 | 4 (1.00" in line and line.rstrip(" |").endswith("1.00 | 0.00")
