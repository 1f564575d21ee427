"""One validator for every argument check, and the CLI's translation of its messages into flags."""

import dataclasses
import math
import re

import numpy as np
import pytest

from kerasgen import config, validate


@pytest.mark.parametrize(
    "check, message",
    [
        (lambda: validate.positive_int("num_samples", 0), "num_samples must be a positive int. Received: num_samples=0"),
        (lambda: validate.positive_int("num_samples", 2.0), "num_samples must be a positive int. Received: num_samples=2.0"),
        (lambda: validate.positive_int("num_samples", True), "num_samples must be a positive int. Received: num_samples=True"),
        (lambda: validate.integer("seed", -1, minimum=0), "seed must be an int >= 0. Received: seed=-1"),
        (lambda: validate.integer("steps", 1, minimum=2), "steps must be an int >= 2. Received: steps=1"),
        (lambda: validate.integer("seed", "a"), "seed must be an int. Received: seed='a'"),
        (lambda: validate.positive_ints("units", ()), r"units must be a non-empty sequence of positive ints. Received: units=()"),
        (lambda: validate.positive_ints("units", (8, 0)), r"units must be a non-empty sequence of positive ints. Received: units=(8, 0)"),
        (lambda: validate.positive_ints("units", "8"), "units must be a non-empty sequence of positive ints. Received: units='8'"),
        (lambda: validate.number("beta", -1, at_least=0), "beta must be a number >= 0. Received: beta=-1"),
        (lambda: validate.number("beta", "1", at_least=0), "beta must be a number >= 0. Received: beta='1'"),
        (lambda: validate.number("beta", False, at_least=0), "beta must be a number >= 0. Received: beta=False"),
        (lambda: validate.number("radius", 0.0, above=0), "radius must be a number > 0. Received: radius=0.0"),
        (lambda: validate.number("free_bits", math.inf, at_least=0), "free_bits must be a finite number >= 0. Received: free_bits=inf"),
        (lambda: validate.number("free_bits", math.nan, at_least=0), "free_bits must be a finite number >= 0. Received: free_bits=nan"),
        (lambda: validate.number("ema_decay", 1, at_least=0, below=1), "ema_decay must be a number in [0, 1). Received: ema_decay=1"),
        (lambda: validate.number("ratio", 0, above=0, at_most=1), "ratio must be a number in (0, 1]. Received: ratio=0"),
        (lambda: validate.number("ratio", 1.5, at_most=1), "ratio must be a number <= 1. Received: ratio=1.5"),
        (lambda: validate.one_of("prior", "ring", ("normal", "mixture")), "prior must be one of 'normal', 'mixture'. Received: prior='ring'"),
        (lambda: validate.one_of("prior", 1, ("normal", "mixture")), "prior must be one of 'normal', 'mixture'. Received: prior=1"),
        (
            lambda: validate.name_or_number("scale", -1.0, ("pixel", "global"), above=0),
            "scale must be 'pixel', 'global' or a number > 0. Received: scale=-1.0",
        ),
        (
            lambda: validate.name_or_number("scale", "pixels", ("pixel", "global"), above=0),
            "scale must be 'pixel', 'global' or a number > 0. Received: scale='pixels'",
        ),
        (lambda: validate.boolean("stream", 1), "stream must be True or False. Received: stream=1"),
    ],
)
def test_each_requirement_is_refused_in_the_house_style(check, message):
    with pytest.raises(ValueError) as error:
        check()
    assert str(error.value) == message


def test_valid_values_pass_and_come_back_unchanged():
    assert validate.positive_int("n", 3) == 3
    assert validate.positive_int("n", np.int64(3)) == 3  # NumPy's integers are ints
    assert validate.integer("seed", -5) == -5
    assert validate.positive_ints("units", [8, 16]) == [8, 16]
    assert validate.number("beta", 0, at_least=0) == 0
    assert validate.number("ema_decay", np.float32(0.5), at_least=0, below=1) == 0.5
    assert validate.number("ratio", 1, above=0, at_most=1) == 1
    assert validate.one_of("prior", "mixture", ("normal", "mixture")) == "mixture"
    assert validate.name_or_number("scale", "global", ("pixel", "global"), above=0) == "global"
    assert validate.name_or_number("scale", 0.5, ("pixel", "global"), above=0) == 0.5
    assert validate.boolean("stream", False) is False


def test_two_bounds_on_one_side_are_a_programming_error():
    with pytest.raises(TypeError):
        validate.number("x", 1, above=0, at_least=0)


@pytest.mark.parametrize(
    "message, flags",
    [
        ("latent_dim must be a positive int. Received: latent_dim=0", "--latent-dim must be a positive int. Received: --latent-dim 0"),
        (
            "needs likelihood='bernoulli'. Received: likelihood='gaussian', decoder='pixelcnn'",
            "needs --likelihood bernoulli. Received: --likelihood gaussian, --decoder pixelcnn",
        ),
        ("Received: num_filters=(32, 0)", "Received: --num-filters 32 0"),
        ("Received: num_filters=[32, 0]", "Received: --num-filters 32 0"),
        ("seed must be an int >= 0. Received: seed=-1.", "--seed must be an int >= 0. Received: --seed -1."),
        ("free_bits must be a finite number >= 0. Received: free_bits=inf", "--free-bits must be a finite number >= 0. Received: --free-bits inf"),
        ("Received: stream=True", "Received: --stream"),
        # A word that is a flag's name stays prose; names the config does not have stay as they are.
        ("The decoder takes z of size 8. Received: source='x', image_shape=(8, 8, 1)", "The decoder takes z of size 8. Received: source='x', image_shape=(8, 8, 1)"),
        # Flags already spelled as flags are left alone.
        ("--free-bits needs --posterior diagonal. Received: --free-bits 0.5", "--free-bits needs --posterior diagonal. Received: --free-bits 0.5"),
    ],
)
def test_library_messages_become_flag_messages(message, flags):
    names = [field.name for field in dataclasses.fields(config.TrainVAEConfig)] + ["stream"]
    assert config.to_flags(message, names) == flags


@pytest.mark.parametrize(
    "config_class, values, library",
    [
        (config.TrainVAEConfig, dict(latent_dim=0), lambda: validate.positive_int("latent_dim", 0)),
        (config.TrainVAEConfig, dict(seed=-1), lambda: validate.integer("seed", -1, minimum=0)),
        (config.TrainVAEConfig, dict(beta=-0.5), lambda: validate.number("beta", -0.5, at_least=0)),
        (config.TrainVAEConfig, dict(learning_rate=math.inf), lambda: validate.number("learning_rate", math.inf, above=0)),
        (config.TrainVAEConfig, dict(num_filters=(8, 0)), lambda: validate.positive_ints("num_filters", (8, 0))),
        (config.TrainVAEConfig, dict(binarize="otsu"), lambda: validate.one_of("binarize", "otsu", ("none", "static", "dynamic"))),
        (config.TrainVAEConfig, dict(stream="yes"), lambda: validate.boolean("stream", "yes")),
        (config.EvaluateConfig, dict(model="m", num_samples=1), lambda: validate.integer("num_samples", 1, minimum=2)),
        (
            config.TrainVAEGANConfig,
            dict(feature_scale=0.0),
            lambda: validate.name_or_number("feature_scale", 0.0, ("fitted",), above=0),
        ),
    ],
)
def test_a_config_refuses_with_the_library_s_message_in_flags(config_class, values, library):
    with pytest.raises(ValueError) as expected:
        library()
    with pytest.raises(ValueError) as error:
        config_class(**values)
    name = next(iter(values.keys() - {"model"}))
    assert str(error.value) == config.to_flags(str(expected.value), [name])
    assert re.match(re.escape(config.flag(name)) + " must be ", str(error.value))
