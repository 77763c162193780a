"""Experiments: studies run over the loop's API, and the tables that read their rows.

The top layer of the library. Each module here runs a design made of many studies (the phase
grid of N x training budget, the factorial of data set x sampler x budget), or a harness that
checks a measure against planted truth (the ground-truth copy suite and planted copies in trained
models), and writes its rows through ``core.layout.RunLayout`` and the loop's manifests; it never
starts the CLI as a subprocess. ``pages`` regenerates the results pages from the shipped rows.
The read side (``analysis``) never imports this layer.
"""
