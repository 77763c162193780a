"""Running the self-consuming loop: the experiment config, the run directory, the stages of one
cycle, the driver of a whole study, the phase-diagram runner, and the metrics.jsonl schema.
"""
