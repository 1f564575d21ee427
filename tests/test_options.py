"""Every name of `kerasgen.options` is one the implementing code builds, and the CLI offers exactly those."""

import dataclasses
import re
import types

import keras
import numpy as np
import pytest

from kerasgen import config, distribute, distributions, options
from kerasgen.data import load_dataset
from kerasgen.models import AAE, GAN, VAE, VAEGAN
from kerasgen.models import aae as aae_module
from kerasgen.networks import build_encoder
from kerasgen.runs.harness import precision, use_xla
from kerasgen.runs.schedules import learning_rate

OPTION_TUPLES = {name: value for name, value in vars(options).items() if name.isupper()}
CONFIGS = [
    value for value in vars(config).values()
    if isinstance(value, type) and issubclass(value, config.Config) and value is not config.Config
]


def test_the_dispatch_tables_hold_exactly_the_listed_names():
    assert set(distributions._LIKELIHOODS) == set(options.LIKELIHOODS)
    assert set(distributions._POSTERIORS) == set(options.POSTERIORS)
    assert set(aae_module._PRIORS) == set(options.AAE_PRIORS)
    assert set(distribute._STRATEGIES) | {"default"} == set(options.STRATEGIES)


@pytest.mark.parametrize("name", options.LIKELIHOODS)
def test_every_likelihood_builds(name):
    likelihood = distributions.get_likelihood(name)
    assert likelihood.name == name
    # Its decoder head's parameters make a distribution over grey 4x4 images.
    params = np.zeros((2, 4, 4, likelihood.parameter_channels(1)), "float32")
    assert tuple(likelihood.distribution(params).log_prob(np.full((2, 4, 4, 1), 0.5, "float32")).shape) == (2,)


def test_every_gaussian_scale_and_posterior_builds():
    for scale in options.GAUSSIAN_SCALES:
        assert distributions.Gaussian(scale).scale == scale
    latent_dim = 3
    for posterior in options.POSTERIORS:
        params = np.zeros((2, distributions.posterior_parameter_size(posterior, latent_dim)), "float32")
        assert tuple(distributions.make_posterior(posterior)(params).sample(seed=1).shape) == (2, latent_dim)


def test_every_architecture_and_latent_layout_builds_its_own_network():
    networks = {
        (architecture, layout): build_encoder((16, 16, 1), (4, 8), 8, 32, architecture=architecture, latent_layout=layout)
        for architecture in options.ARCHITECTURES
        for layout in options.LATENT_LAYOUTS
    }
    # Each name builds a network of its own, not a fallback to another name's.
    layer_kinds = {key: tuple(type(layer).__name__ for layer in model.layers) for key, model in networks.items()}
    assert len(set(layer_kinds.values())) == len(networks)


def test_every_decoder_builds():
    vaes = [
        VAE(image_shape=(8, 8, 1), latent_dim=2, num_filters=(4,), hidden_dim=8, decoder=decoder, pixelcnn_layers=1,
            pixelcnn_filters=4, seed=0)
        for decoder in options.DECODERS
    ]
    assert [vae.decoder_type for vae in vaes] == list(options.DECODERS)
    assert [vae.pixelcnn is not None for vae in vaes] == [decoder == "pixelcnn" for decoder in options.DECODERS]
    # Each PixelCNN conditioning takes its own input: a feature map, or z itself.
    inputs = {
        conditioning: tuple(VAE(image_shape=(8, 8, 1), latent_dim=2, num_filters=(4,), hidden_dim=8, decoder="pixelcnn",
                                pixelcnn_layers=1, pixelcnn_filters=4, pixelcnn_conditioning=conditioning,
                                seed=0).pixelcnn.inputs[1].shape)
        for conditioning in options.PIXELCNN_CONDITIONINGS
    }
    assert inputs == {"spatial": (None, 8, 8, 4), "global": (None, 2)}


def test_every_aae_encoder_and_prior_builds_its_own():
    models = {
        (encoder, prior): AAE(image_shape=(8, 8, 1), latent_dim=2, num_filters=(4,), hidden_dim=8, discriminator_units=(8,),
                              encoder=encoder, prior=prior, seed=0)
        for encoder in options.AAE_ENCODERS
        for prior in options.AAE_PRIORS
    }
    priors = {prior: type(models[options.AAE_ENCODERS[0], prior].prior()).__name__ for prior in options.AAE_PRIORS}
    assert len(set(priors.values())) == len(options.AAE_PRIORS), priors
    images = np.full((2, 8, 8, 1), 0.5, "float32")
    posteriors = {encoder: type(models[encoder, "normal"].posterior_distribution(images)) for encoder in options.AAE_ENCODERS}
    assert len(set(posteriors.values())) == len(options.AAE_ENCODERS), posteriors


def test_every_init_starts_from_the_vae_or_not():
    vae = VAE(image_shape=(8, 8, 1), latent_dim=2, num_filters=(4,), hidden_dim=8, seed=0)
    kept = vae.decoder.get_weights()

    def copies(model, network):
        return all(np.array_equal(a, b) for a, b in zip(getattr(model, network).get_weights(), kept))

    gans = {init: GAN.from_vae(vae, init=init, seed=1) for init in options.GENERATOR_INITS}
    assert {init: copies(gan, "generator") for init, gan in gans.items()} == {"decoder": True, "scratch": False}
    for model_class in (VAEGAN, AAE):
        models = {init: model_class.from_vae(vae, init=init, seed=1) for init in options.VAE_INITS}
        assert {init: copies(model, "decoder") for init, model in models.items()} == {"vae": True, "scratch": False}


def test_every_binarization_loads_its_own_pixels(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "grey.npz"
    np.savez(path, x_train=(rng.uniform(size=(16, 4, 4)) * 255).astype(np.uint8))
    seen = {}
    for binarize in options.BINARIZATIONS:
        splits = load_dataset(str(path), batch_size=16, validation_size=4, binarize=binarize, seed=0)
        first, second = (np.concatenate([x for x, _ in splits.train]) for _ in range(2))
        binary = bool(np.isin(first, (0.0, 1.0)).all())
        # Sorted, as each epoch shuffles: the same pixels, or fresh ones each epoch.
        fresh = not np.array_equal(np.sort(first, axis=None), np.sort(second, axis=None))
        seen[binarize] = (binary, fresh)
    assert seen == {"none": (False, False), "static": (True, False), "dynamic": (True, True)}


def test_every_schedule_precision_xla_choice_and_strategy_is_understood():
    rates = {
        name: learning_rate(types.SimpleNamespace(lr_schedule=name, learning_rate=1e-3, epochs=2), 5)
        for name in options.LR_SCHEDULES
    }
    assert rates["constant"] == 1e-3 and isinstance(rates["cosine"], keras.optimizers.schedules.CosineDecay)
    policies = set()
    for name in options.MIXED_PRECISIONS:
        with precision(name):
            policies.add(keras.config.dtype_policy().name)
    assert policies == {"float32", "mixed_float16", "mixed_bfloat16"}
    assert {name: use_xla(name) for name in options.JIT_COMPILES if name != "auto"} == {"on": True, "off": False}
    assert isinstance(use_xla("auto"), bool)
    for name in ("default", "mirrored"):  # multi-worker needs TF_CONFIG; see test_distribute.py
        assert distribute.get_strategy(name).extended is not None
    with pytest.raises(ValueError, match="strategy must be one of 'default', 'mirrored', 'multi-worker'. Received: strategy='tpu'"):
        distribute.get_strategy("tpu")


@pytest.mark.parametrize("config_class", CONFIGS, ids=lambda c: c.__name__)
def test_the_flags_offer_the_implemented_names_and_their_help_says_each(config_class):
    for field in dataclasses.fields(config_class):
        choices = field.metadata.get("choices")
        if not choices:
            continue
        # The very tuple the implementing module dispatches on, not a copy that could drift.
        assert any(choices is value for value in OPTION_TUPLES.values()), (config_class.__name__, field.name, choices)
        for choice in choices:
            assert re.search(rf"(?<![\w-]){re.escape(choice)}(?![\w-])", field.metadata["help"]), (field.name, choice)
