"""collapse-diffusion: study and prevent model collapse in self-consuming diffusion models."""

__version__ = "0.1.0"
