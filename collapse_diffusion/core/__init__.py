"""The foundation every layer shares: errors, atomic file writing, the strict YAML loader and stage
configs, seeds, run-directory paths and typed result records; no torch.
"""
