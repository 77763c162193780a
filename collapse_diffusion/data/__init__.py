"""Real image sets: the ImageSet type with its provenance, the two pixel-range conversions, and the
loaders of every data source.
"""
