"""The generative models."""

from kerasgen.models.vae import VAE

__all__ = ["VAE"]
