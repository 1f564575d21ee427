"""The choice rules: which likelihood, binarization and network a run builds for its data."""

import numpy as np
import pytest

from kerasgen.runs.choose import choose_settings, pixel_kind

DIGITS = {
    "architecture": "conv", "num_filters": (32, 64), "num_blocks": 1, "hidden_dim": 256, "latent_dim": 8,
    "latent_layout": "vector",
}


def _preset(image_shape):
    return {
        "architecture": "resnet", "num_filters": (64, 128), "num_blocks": 2, "hidden_dim": 512, "latent_dim": 256,
        "latent_layout": "map", "_shape": image_shape,
    }


def _open(**given):
    fields = dict.fromkeys(
        ("likelihood", "binarize", "architecture", "num_filters", "num_blocks", "hidden_dim", "latent_dim", "latent_layout")
    )
    return {**fields, **given}


def _strokes(seed=0, n=16, size=28):
    """Grey digit-like images: mostly black, some white strokes, a few grey edge pixels."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, size, size, 1), np.uint8)
    images[:, 10:18, 8:20] = 255
    edges = rng.random(images.shape) < 0.05
    images[edges] = rng.integers(60, 200, edges.sum())
    return images


def _photographs(channels, seed=0, n=16, size=32):
    """Smooth 8-bit images with their values spread over the whole range."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 1, size)[None, :, None, None] * np.linspace(0.3, 1, size)[None, None, :, None]
    noise = rng.normal(0, 0.15, (n, size, size, channels))
    return np.clip(255 * (0.2 + 0.6 * ramp + noise), 0, 255).astype(np.uint8)


def test_near_binary_grey_digits_get_the_bernoulli_and_the_digit_networks():
    choice = choose_settings(_strokes(), _open(), _preset, DIGITS)
    assert choice.kind == "near-binary grey"
    assert choice.settings == {"likelihood": "bernoulli", "binarize": "dynamic", **DIGITS}
    assert "bernoulli" in choice.line() and "near-binary grey" in choice.line()


def test_grey_photographs_get_the_8_bit_likelihood_and_the_preset():
    choice = choose_settings(_photographs(1), _open(), _preset, DIGITS)
    assert choice.kind == "8-bit grey"
    assert choice.settings["likelihood"] == "logistic_mixture"
    assert choice.settings["binarize"] == "none"
    assert choice.settings["architecture"] == "resnet"


def test_colour_gets_the_8_bit_likelihood_and_the_preset_for_its_shape():
    shapes = []
    choice = choose_settings(_photographs(3, size=64), _open(), lambda s: (shapes.append(s), _preset(s))[1], DIGITS)
    assert choice.kind == "8-bit colour"
    assert choice.settings["likelihood"] == "logistic_mixture" and choice.settings["binarize"] == "none"
    assert choice.settings["latent_layout"] == "map"
    assert shapes == [(64, 64, 3)]


def test_the_real_presets_give_photographs_a_latent_map_and_digits_a_vector():
    from kerasgen.networks import network_preset
    from kerasgen.runs.choose import DIGIT_NETWORK

    digits = choose_settings(_strokes(), _open(), network_preset, {**DIGIT_NETWORK, "latent_dim": 16})
    assert (digits.settings["latent_layout"], digits.settings["latent_dim"]) == ("vector", 16)
    for side, levels in ((32, 2), (64, 3)):
        colour = choose_settings(_photographs(3, size=side), _open(), network_preset, {**DIGIT_NETWORK, "latent_dim": 16})
        # An 8x8x16 map: the networks stop at 8x8.
        assert (colour.settings["latent_layout"], colour.settings["latent_dim"]) == ("map", 1024)
        assert side // 2 ** len(colour.settings["num_filters"]) == 8 and len(colour.settings["num_filters"]) == levels
        assert "latent layout map" in colour.line() and "hidden dim" not in colour.line()
    # Given networks or a given latent size that no map of them holds: a vector, not a refusal.
    given = _open(num_filters=(8, 16), latent_dim=4)
    small = choose_settings(_photographs(3, size=32), given, network_preset, {**DIGIT_NETWORK, "latent_dim": 16})
    assert (small.settings["latent_layout"], small.settings["latent_dim"]) == ("vector", 4)
    fits = choose_settings(_photographs(3, size=32), _open(latent_dim=64 * 4), network_preset, DIGIT_NETWORK)
    assert fits.settings["latent_layout"] == "map"


def test_colour_is_8_bit_even_when_its_pixels_are_near_black_or_white():
    # A colour image set of saturated pixels is still not a binary-pixel problem.
    images = np.repeat(_strokes(size=32), 3, axis=-1)
    kind, share = pixel_kind(images)
    assert kind == "8-bit colour" and share > 0.9


def test_the_kind_is_judged_on_the_whole_data_not_its_first_images():
    # A folder read class by class: 1,000 stroke images first, then 4,000 grey photographs.
    images = np.concatenate([_strokes(n=1000), _photographs(1, n=4000, size=28)])
    assert pixel_kind(images[:1000])[0] == "near-binary grey"
    kind, share = pixel_kind(images)
    assert kind == "8-bit grey"
    assert share == pytest.approx(0.2 * pixel_kind(images[:1000])[1] + 0.8 * pixel_kind(images[1000:])[1], abs=0.01)


def test_given_values_are_kept_and_named():
    choice = choose_settings(_photographs(3), _open(likelihood="gaussian", latent_dim=16), _preset, DIGITS)
    assert choice.settings["likelihood"] == "gaussian"
    assert choice.settings["binarize"] == "none"
    assert choice.settings["latent_dim"] == 16
    assert choice.given == ("likelihood", "latent_dim")
    assert "kept as given: --likelihood, --latent-dim" in choice.line()


def test_a_given_bernoulli_on_grey_photographs_brings_dynamic_binarization():
    choice = choose_settings(_photographs(1), _open(likelihood="bernoulli"), _preset, DIGITS)
    assert choice.settings["binarize"] == "dynamic"


def test_unit_float_images_are_judged_like_uint8():
    images = _strokes()
    assert pixel_kind(images)[1] == pytest.approx(pixel_kind(images.astype(np.float32) / 255)[1])


def test_fields_a_run_lacks_are_neither_chosen_nor_reported():
    choice = choose_settings(_strokes(), {"likelihood": None, "binarize": None}, _preset, DIGITS)
    assert set(choice.settings) == {"likelihood", "binarize"}


def test_bad_images_are_refused_naming_the_shape():
    with pytest.raises(ValueError, match=r"Received: shape \(0, 28, 28, 1\)"):
        pixel_kind(np.zeros((0, 28, 28, 1), np.uint8))
