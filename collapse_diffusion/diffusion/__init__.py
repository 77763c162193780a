"""The generative model and its training: UNet presets, the noise schedule and loss, counter-based
noise, the training loop, sampling, and device placement.
"""
