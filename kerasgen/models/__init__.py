"""The generative models, and the domain classifier that evaluates them."""

from kerasgen.models.aae import AAE
from kerasgen.models.aggressive_vae import AggressiveVAE
from kerasgen.models.classifier import Classifier
from kerasgen.models.gan import GAN
from kerasgen.models.vae import VAE
from kerasgen.models.vae_gan import VAEGAN

__all__ = ["AAE", "AggressiveVAE", "Classifier", "GAN", "VAE", "VAEGAN"]
