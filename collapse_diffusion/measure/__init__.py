"""Measuring a cycle: the exact kNN engine, the KL entropy, nearest-neighbour copy measures and GS,
feature extractors, the Fréchet distance, and the evaluation stage that records them.
"""
