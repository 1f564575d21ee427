"""The names an argument chooses between, one tuple per choice, each next to the code it belongs to.

The module named above each tuple implements it: it imports the tuple, checks its argument against it
and dispatches on exactly these names. The run configs (`config.py`) read the same tuples for their
flags' choices, so `--help`, the CLI's checks and the library cannot disagree; this module imports
nothing, so the CLI reads them without TensorFlow. `tests/test_options.py` builds every name.
"""

# distributions.get_likelihood: p(x|z).
LIKELIHOODS = ("bernoulli", "gaussian", "continuous_bernoulli", "logistic_mixture")
# distributions.Gaussian: the Gaussian likelihood's scale, besides a fixed positive number.
GAUSSIAN_SCALES = ("pixel", "global", "optimal")
# distributions.make_posterior: q(z|x).
POSTERIORS = ("diagonal", "full")

# data.pipeline.load_dataset: how grey pixels become the training images.
BINARIZATIONS = ("none", "static", "dynamic")

# networks.build_encoder / build_decoder: the networks' family.
ARCHITECTURES = ("conv", "resnet", "dcgan")
# networks.build_encoder / build_decoder: z as one vector (dense layers to and from the coarsest
# feature map) or as a map at that resolution (3x3 convolutions to and from it), which keeps where
# things are in the image.
LATENT_LAYOUTS = ("vector", "map")

# models.vae.VAE: the decoder, pixels independent given z or a PixelCNN.
DECODERS = ("conv", "pixelcnn")
# How a PixelCNN decoder takes z: a feature map the deconvolutional decoder makes of it, or z itself.
PIXELCNN_CONDITIONINGS = ("spatial", "global")
# models.gan.GAN.from_vae: the generator's weights.
GENERATOR_INITS = ("decoder", "scratch")
# models.vae_gan.VAEGAN.from_vae and models.aae.AAE.from_vae: the weights taken from the VAE.
VAE_INITS = ("vae", "scratch")
# models.vae_gan.VAEGAN: sigma of the feature likelihood, besides a fixed positive number.
FEATURE_SCALES = ("fitted",)
# models.aae.AAE: q(z|x).
AAE_ENCODERS = ("deterministic", "gaussian")
# models.aae.AAE: p(z).
AAE_PRIORS = ("normal", "mixture")

# runs.schedules.learning_rate.
LR_SCHEDULES = ("constant", "cosine")
# distribute.get_strategy.
STRATEGIES = ("default", "mirrored", "multi-worker")
# runs.harness.precision.
MIXED_PRECISIONS = ("none", "float16", "bfloat16")
# runs.harness.use_xla.
JIT_COMPILES = ("auto", "on", "off")
