"""The factorial experiment's reading: slopes per cell and arm with seed intervals, greedy against
vanilla paired by seed, and the pilot predictor's accuracy, on rows with planted trends."""
from collapse_diffusion.analysis.stats import estimate
from collapse_diffusion.experiments.factorial_tables import direction, pilot_lines, pilot_sign, slope_table


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
    from collapse_diffusion.experiments.factorial_tables import loo_threshold, predictor_lines
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
    assert "| 4 | 2 | 2 | 0 | 4 (1.00" in line and line.rstrip(" |").endswith("1.00 | 0.00")  # up, down, flat


def test_a_flat_slope_is_exactly_flat_and_scored_as_its_own_sign():
    """A slope that is 0 in exact arithmetic reads 0.0, whatever the machine's rounding; a flat chain is
    predicted right only by a flat pilot (the page says so)."""
    from collapse_diffusion.analysis.stats import sign, slope
    assert slope([1, 2, 3, 4, 5], [0, 0.0625, 0, 0.0625, 0]) == 0.0
    assert slope([1, 2], [0.3, 0.3]) == 0.0 and sign(-1.75e-20) == 0 and sign(1e-17) == 0 and sign(-0.01) == -1
    rows = []
    for seed, values in enumerate(([0, 0.0625, 0, 0.0625, 0], [0.1, 0.1, 0.2, 0.3, 0.4], [0.5, 0.5, 0.5, 0.5, 0.5])):
        rows += [{"data": "d", "sampler": "s", "steps": 1, "seed": seed, "paradigm": "replace", "arm": "vanilla",
                  "cycle": c, "copy_share": v} for c, v in enumerate(values, start=1)]
    chains = pilot_sign(rows)
    assert [c["slope"] == 0.0 for c in chains] == [True, False, True]
    # seed 0: pilot rises, chain flat (wrong); seed 1: pilot flat, chain rises (wrong); seed 2: both flat (right)
    assert [c["agree"] for c in chains] == [False, False, True]
