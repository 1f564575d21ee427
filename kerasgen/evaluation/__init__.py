"""Evaluation: likelihood (ELBO, importance-weighted log p(x), posterior diagnostics: one in-graph
implementation of the latent instruments, `LatentInstruments`, shared with training), sample
quality on a domain classifier's features (Fréchet distance, KID, classifier score), reconstructions
and the aggregated posterior of encoder models (classifier accuracy and Fréchet distance of
reconstructions, MMD between q(z) and p(z)), and the `kerasgen evaluate` report that puts them
together with the plots."""

from kerasgen.evaluation.instruments import LatentInstruments
from kerasgen.evaluation.likelihood import elbo, importance_weighted_log_likelihood, posterior_diagnostics
from kerasgen.evaluation.reconstruction import (
    aggregated_posterior_mmd,
    reconstruct_images,
    reconstruction_quality,
    unbiased_mmd_squared,
)
from kerasgen.evaluation.sample_quality import (
    KID,
    classifier_score,
    compute_features,
    frechet_distance,
    kernel_inception_distance,
)

__all__ = [
    "KID",
    "LatentInstruments",
    "aggregated_posterior_mmd",
    "classifier_score",
    "compute_features",
    "elbo",
    "frechet_distance",
    "importance_weighted_log_likelihood",
    "kernel_inception_distance",
    "posterior_diagnostics",
    "reconstruct_images",
    "reconstruction_quality",
    "unbiased_mmd_squared",
]
