"""The generative models, and the domain classifier that evaluates them."""

from kerasgen.models.classifier import Classifier
from kerasgen.models.vae import VAE

__all__ = ["Classifier", "VAE"]
