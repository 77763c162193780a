"""Reading finished runs without torch: rows, statistics and figures, the paper's findings, the
report, and phase tables.
"""
