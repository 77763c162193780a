"""Choosing the next training set: the registry of selectors and arms, the selector algorithms, the
filters and the pipeline that chains them, self-verification, the paradigms, and the selection
record.
"""
