"""The adversarial autoencoder: which part each of its three optimizers moves, its losses by hand,
the mixture prior (and that every grid and plot decodes it), the `.keras` round trip, the warm
start from a VAE, and that it learns."""

import glob
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasgen import distribute, plots
from kerasgen.callbacks import SampleGrid
from kerasgen.evaluation import sample_quality
from kerasgen.images import image_grid
from kerasgen.models import AAE, VAE
from kerasgen.runs.harness import precision

IMAGE_SHAPE = (8, 8, 1)
LATENT_DIM = 2


def _aae(**kwargs):
    """The smallest AAE: one conv level, 8 hidden units, an 8-unit discriminator; seeded weights."""
    keras.utils.set_random_seed(0)
    defaults = dict(
        image_shape=IMAGE_SHAPE, latent_dim=LATENT_DIM, num_filters=(4,), hidden_dim=8, discriminator_units=(8,), seed=0
    )
    return AAE(**{**defaults, **kwargs})


def _images(n=8, seed=0):
    """Binary 8x8 images of vertical bars."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, *IMAGE_SHAPE), "float32")
    for i in range(n):
        start = rng.integers(0, 6)
        images[i, :, start : start + 3, 0] = 1.0
    return images


def _softplus(x):
    return np.logaddexp(0.0, x)


def _weights(model):
    return [np.array(w) for w in model.get_weights()]


def _identical(before, model):
    return all(np.array_equal(b, a) for b, a in zip(before, model.get_weights()))


def _numpy(x):
    return keras.ops.convert_to_numpy(x).astype("float64")


# --- Each optimizer moves only its own part -------------------------------------------------------


@pytest.mark.parametrize(
    "active, moved",
    [
        ("optimizer", {"encoder", "decoder"}),
        ("d_optimizer", {"discriminator"}),
        ("g_optimizer", {"encoder"}),
    ],
)
def test_each_optimizer_moves_only_its_own_part(active, moved):
    # Zero learning rates freeze two of the three phases: whatever the third does must leave every
    # network outside its own part bit-identical (the D phase: encoder and decoder untouched).
    aae = _aae(encoder="gaussian", prior="mixture")
    rates = {name: 0.1 if name == active else 0.0 for name in ("optimizer", "d_optimizer", "g_optimizer")}
    # Eager: the same train_step as in a graph (the hand-computed losses below run it as one), faster here.
    aae.compile(**{name: keras.optimizers.SGD(rate) for name, rate in rates.items()}, run_eagerly=True)
    networks = {"encoder": aae.encoder, "decoder": aae.decoder, "discriminator": aae.discriminator}
    before = {name: _weights(network) for name, network in networks.items()}
    aae.fit(_images(), batch_size=8, epochs=1, verbose=0)
    assert [int(o.iterations) for o in (aae.optimizer, aae.d_optimizer, aae.g_optimizer)] == [1, 1, 1]
    for name, network in networks.items():
        assert _identical(before[name], network) == (name not in moved), name


# --- The losses, by hand -------------------------------------------------------------------------


def _discriminator_logits(aae, z):
    """D(z) in numpy from D's weights: Dense(8, leaky_relu 0.2), then Dense(1)."""
    w1, b1, w2, b2 = (w.astype("float64") for w in aae.discriminator.get_weights())
    hidden = z @ w1 + b1
    hidden = np.where(hidden > 0, hidden, 0.2 * hidden)
    return (hidden @ w2 + b2)[:, 0]


def _expected_losses(aae, images, seed):
    """The three losses and D's probabilities for a deterministic encoder, in numpy.

    The prior draws are the first seed of the step's seed generator (`seed`), drawn as TFP draws.
    """
    codes = _numpy(aae.encoder(images))
    logits = _numpy(aae.decoder(codes.astype("float32")))
    x = images.astype("float64")
    log_likelihood = -(x * _softplus(-logits) + (1 - x) * _softplus(logits)).reshape(len(x), -1).sum(axis=1)
    prior_draws = _numpy(aae.prior().sample(len(x), seed=distribute.next_seed(keras.random.SeedGenerator(seed))))
    real, fake = _discriminator_logits(aae, prior_draws), _discriminator_logits(aae, codes)
    return {
        "reconstruction": -log_likelihood.mean(),
        "d_loss": _softplus(-real).mean() + _softplus(fake).mean(),
        "g_loss": _softplus(-fake).mean(),
        "d_real": (1 / (1 + np.exp(-real))).mean(),
        "d_fake": (1 / (1 + np.exp(-fake))).mean(),
    }


def test_losses_equal_their_hand_computation_in_evaluate_and_in_a_step():
    aae = _aae(prior="mixture")
    images = _images()
    aae.compile(**{name: keras.optimizers.SGD(0.0) for name in ("optimizer", "d_optimizer", "g_optimizer")})
    # evaluate draws from seed + 1, training from seed; at rate 0 the step's later phases see the
    # same networks as its first, so both are the initial model's losses.
    metrics = aae.evaluate(images, batch_size=8, verbose=0, return_dict=True)
    history = aae.fit(images, batch_size=8, epochs=1, verbose=0, shuffle=False).history
    for logs, seed in ((metrics, 1), ({k: v[0] for k, v in history.items()}, 0)):
        expected = _expected_losses(aae, images, seed)
        assert set(logs) == set(expected)
        for name, value in expected.items():
            assert logs[name] == pytest.approx(value, rel=1e-5), (seed, name)
    # The draws matter: prior draws and codes get different logits.
    assert expected["d_real"] != pytest.approx(expected["d_fake"], rel=1e-3)


# --- The mixture prior ---------------------------------------------------------------------------


def test_mixture_prior_log_prob_is_the_logsumexp_of_its_components():
    components, radius, latent_dim = 5, 2.5, 3
    prior = _aae(latent_dim=latent_dim, prior="mixture", prior_components=components, prior_radius=radius).prior()
    means = _numpy(prior.components_distribution.mean())
    angles = 2 * np.pi * np.arange(components) / components
    np.testing.assert_allclose(means[:, :2], radius * np.c_[np.cos(angles), np.sin(angles)], atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(means[:, :2], axis=1), radius, rtol=1e-6)
    np.testing.assert_array_equal(means[:, 2:], 0.0)
    assert tuple(prior.event_shape) == (latent_dim,)

    z = np.random.default_rng(0).normal(0, 2, size=(6, latent_dim))
    scale = np.array([0.5, 0.5, 1.0])
    # log p(z) = logsumexp_k [log(1/K) + Σ_d log N(z_d; μ_kd, s_d)]
    log_normal = -0.5 * ((z[:, None, :] - means[None]) / scale) ** 2 - np.log(scale) - 0.5 * np.log(2 * np.pi)
    terms = np.log(1 / components) + log_normal.sum(axis=-1)
    expected = np.log(np.exp(terms - terms.max(axis=1, keepdims=True)).sum(axis=1)) + terms.max(axis=1)
    np.testing.assert_allclose(_numpy(prior.log_prob(z.astype("float32"))), expected, rtol=1e-5)


# --- Saving --------------------------------------------------------------------------------------


def test_keras_file_round_trip_gives_the_same_model_and_resumes_training(tmp_path):
    aae = _aae(encoder="gaussian", prior="mixture")
    aae.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        d_optimizer=keras.optimizers.SGD(0.05),
        g_optimizer="rmsprop",
        run_eagerly=True,
    )
    images = _images()
    aae.fit(images, batch_size=8, epochs=1, verbose=0)
    aae.save(tmp_path / "aae.keras")
    restored = keras.saving.load_model(tmp_path / "aae.keras")
    assert isinstance(restored, AAE) and restored.get_config() == aae.get_config()
    np.testing.assert_array_equal(restored.reconstruct(images), aae.reconstruct(images))
    np.testing.assert_array_equal(restored.sample(4, seed=3), aae.sample(4, seed=3))
    loc, scale = restored.encode(images)
    np.testing.assert_array_equal(loc, aae.encode(images)[0])
    np.testing.assert_array_equal(scale, aae.encode(images)[1])
    # The three optimizers come back with their state, so a resumed step is the step the original takes.
    kinds = [type(o).__name__ for o in (restored.optimizer, restored.d_optimizer, restored.g_optimizer)]
    assert kinds == ["Adam", "SGD", "RMSprop"]
    assert all(int(o.iterations) == 1 for o in (restored.optimizer, restored.d_optimizer, restored.g_optimizer))
    # A `.keras` file holds no SeedGenerator state (Keras saves weights and optimizers; a run's
    # checkpoint, `runs.plumbing.Backup`, carries the seeds): give the copy the original's.
    for name in ("seed_generator", "eval_seed_generator"):
        getattr(restored, name).state.assign(getattr(aae, name).state)
    for model in (aae, restored):
        model.fit(images, batch_size=8, epochs=1, verbose=0, shuffle=False)
    for a, b in zip(aae.get_weights(), restored.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_mixed_float16_scales_each_phase_on_its_own():
    with precision("float16"):
        aae = _aae(encoder="gaussian")
        aae.compile(run_eagerly=True)
    scaled = (aae.optimizer, aae.d_optimizer, aae.g_optimizer)
    assert all(isinstance(o, keras.optimizers.LossScaleOptimizer) for o in scaled)
    assert len({id(o) for o in scaled}) == 3
    assert aae.encoder.layers[1].compute_dtype == "float16"
    history = aae.fit(_images(), batch_size=8, epochs=1, verbose=0).history
    assert all(np.isfinite(v[0]) for v in history.values())
    assert keras.backend.standardize_dtype(aae.sample(2, seed=0).dtype) == "float32"


# --- Grids and plots decode the model's own prior ------------------------------------------------

RING_RADIUS = 4.0
GRID_SAMPLES = 64
# The grid's statistics against the prior's, for 64 latents of a ring of 10 components of scale 0.5
# in 2-D. Prior draws: mean log p(z) -3.7 nats and mean radius 4.03, with standard errors over 64
# draws of about 0.15 nats and 0.06; N(0, I) latents, the old grids', give -18.9 nats and 1.22.
LOG_PROB_TOLERANCE_NATS = 1.0
RADIUS_TOLERANCE = 0.3


def _ring_aae():
    return _aae(prior="mixture", prior_radius=RING_RADIUS)


def _watch_decode(aae, monkeypatch):
    """Every batch of latents `aae.decode` receives from now on, as numpy arrays, in call order."""
    seen, decode = [], aae.decode

    def watched(z):
        seen.append(keras.ops.convert_to_numpy(z))
        return decode(z)

    monkeypatch.setattr(aae, "decode", watched)
    return seen


def _sample_grid(aae, tmp_path):
    grid = SampleGrid(tmp_path / "run", num_samples=GRID_SAMPLES, seed=0, logdir=str(tmp_path / "logs"))
    grid.set_model(aae)
    grid.on_train_begin()  # writes epoch_000 (PNG and TensorBoard image), as fit does before its first step
    grid.on_train_end()


def _tensorboard_images(logdir):
    """The images `tf.summary.image` wrote under `logdir`, as `{tag: uint8 array [H, W, C]}`."""
    images = {}
    for path in glob.glob(os.path.join(logdir, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                encoded = tf.make_ndarray(value.tensor)[2]  # [width, height, PNG bytes]
                images[value.tag] = tf.io.decode_png(encoded).numpy()
    return images


DRAWS = {
    "SampleGrid": _sample_grid,
    "plot_same_latents": lambda aae, tmp_path: plots.plot_same_latents(
        {"AAE": aae}, str(tmp_path / "same.png"), num_samples=GRID_SAMPLES
    ),
    "plot_samples_and_reconstructions": lambda aae, tmp_path: plots.plot_samples_and_reconstructions(
        {"AAE": aae}, _images(4), str(tmp_path / "both.png"), num_samples=GRID_SAMPLES
    ),
    "sample_quality.sample_images": lambda aae, tmp_path: sample_quality.sample_images(
        aae, GRID_SAMPLES, batch_size=GRID_SAMPLES
    ),
}


@pytest.mark.parametrize("draw", DRAWS)
def test_grids_and_samples_of_a_ring_prior_decode_latents_from_the_ring(draw, tmp_path, monkeypatch):
    aae = _ring_aae()
    seen = _watch_decode(aae, monkeypatch)
    DRAWS[draw](aae, tmp_path)
    z = seen[0]  # the samples' latents come first (reconstructions, if any, after)
    assert z.shape == (GRID_SAMPLES, LATENT_DIM)
    prior = aae.prior()
    draws = keras.ops.convert_to_numpy(prior.sample(4096, seed=tf.constant([7, 0])))
    log_prob = float(np.mean(keras.ops.convert_to_numpy(prior.log_prob(z))))
    expected = float(np.mean(keras.ops.convert_to_numpy(prior.log_prob(draws))))
    assert log_prob == pytest.approx(expected, abs=LOG_PROB_TOLERANCE_NATS)
    radius = np.linalg.norm(z[:, :2], axis=1)
    assert float(np.mean(radius)) == pytest.approx(RING_RADIUS, abs=RADIUS_TOLERANCE)


def test_sample_grid_pngs_and_tensorboard_images_are_the_models_own_samples(tmp_path):
    # The training-progress figure of the report tiles these PNGs, so it shows the same images.
    aae = _ring_aae()
    _sample_grid(aae, tmp_path)
    png = tf.io.decode_png(tf.io.read_file(str(tmp_path / "run" / "samples" / "epoch_000.png"))).numpy()
    expected = image_grid(keras.ops.convert_to_numpy(aae.sample(GRID_SAMPLES, seed=0)))
    np.testing.assert_array_equal(png, expected)
    np.testing.assert_array_equal(_tensorboard_images(str(tmp_path / "logs" / "images"))["samples"], expected)


def test_latent_manifold_spans_the_ring_priors_quantiles(tmp_path, monkeypatch):
    aae = _ring_aae()
    seen = _watch_decode(aae, monkeypatch)
    plots.plot_latent_manifold(aae, str(tmp_path / "manifold.png"), grid_size=6)
    (z,) = seen
    draws = keras.ops.convert_to_numpy(aae.prior().sample(20000, seed=tf.constant([7, 0])))
    for axis in (0, 1):
        # Edges at the marginal's 5% and 95% quantiles (about ±4.1 here; ±1.64 for N(0, 1)).
        edges = np.quantile(draws[:, axis], [0.05, 0.95])
        np.testing.assert_allclose([z[:, axis].min(), z[:, axis].max()], edges, atol=0.1)
    assert len(np.unique(z[:, 0])) == 6 and len(np.unique(z[:, 1])) == 6


@pytest.mark.parametrize("latent_layout, latent_dim", [("vector", 2), ("map", 16)])
def test_prior_latents_are_the_draws_of_the_models_own_sample(latent_layout, latent_dim):
    from kerasgen.latent import fixed_latents, prior_latents

    aae = _aae(prior="mixture", latent_layout=latent_layout, latent_dim=latent_dim)
    z = prior_latents(aae, 5, seed=3)
    # Flat [N, D] latents, whatever the layout: the map decoder reshapes them itself.
    assert z.shape == (5, latent_dim) and z.dtype == np.float32
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(aae.decode(z)), keras.ops.convert_to_numpy(aae.sample(5, seed=3)))
    # N(0, I) priors share one draw per seed, so the grids of models with that prior compare.
    for model in (_aae(), _vae()):
        np.testing.assert_array_equal(prior_latents(model, 5, seed=3), fixed_latents(5, LATENT_DIM, seed=3))


# --- Warm start from a VAE -----------------------------------------------------------------------


def _vae(**kwargs):
    keras.utils.set_random_seed(1)
    return VAE(image_shape=IMAGE_SHAPE, latent_dim=LATENT_DIM, num_filters=(4,), hidden_dim=8, seed=0, **kwargs)


@pytest.mark.parametrize("posterior", ["diagonal", "full"])
def test_a_deterministic_aae_from_a_vae_reconstructs_and_samples_as_the_vae(posterior):
    vae = _vae(posterior=posterior, likelihood="gaussian", likelihood_scale="global")
    aae = AAE.from_vae(vae, discriminator_units=(8,))
    images = _images()
    np.testing.assert_allclose(aae.reconstruct(images), vae.reconstruct(images), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(aae.encode(images)[0], vae.encode(images)[0], rtol=1e-5, atol=1e-6)
    # Same decoder, and N(0, I) draws for an int seed as keras.random draws them.
    np.testing.assert_allclose(aae.sample(3, seed=5), vae.sample(3, seed=5), rtol=1e-5, atol=1e-6)
    scratch = AAE.from_vae(vae, init="scratch", discriminator_units=(8,))
    assert {**scratch.get_config(), "name": None} == {**aae.get_config(), "name": None}
    assert not np.allclose(scratch.reconstruct(images), vae.reconstruct(images))


def test_a_gaussian_aae_from_a_vae_encodes_as_the_vae():
    vae = _vae()
    aae = AAE.from_vae(vae, encoder="gaussian", prior="mixture", discriminator_units=(8,))
    assert aae.defines_likelihood and not AAE.from_vae(vae, discriminator_units=(8,)).defines_likelihood
    images = _images()
    for ours, theirs in zip(aae.encode(images), vae.encode(images)):
        np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(aae.reconstruct(images), vae.reconstruct(images))
    with pytest.raises(ValueError, match="posterior='diagonal'.*Received: a VAE with posterior='full'"):
        AAE.from_vae(_vae(posterior="full"), encoder="gaussian")


# --- Bad arguments -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(latent_dim=1, prior="mixture"), r"needs latent_dim >= 2. Received: latent_dim=1"),
        (dict(encoder="flow"), "encoder must be one of 'deterministic', 'gaussian'. Received: encoder='flow'"),
        (dict(prior="uniform"), "prior must be one of 'normal', 'mixture'. Received: prior='uniform'"),
        (dict(prior_components=0), "Received: prior_components=0"),
        (dict(prior_radius=-1.0), r"Received: prior_radius=-1.0"),
        (dict(discriminator_units=()), r"Received: discriminator_units=\(\)"),
        (dict(likelihood="poisson"), "Received: likelihood='poisson'"),
        (dict(latent_dim=0), "Received: latent_dim=0"),
    ],
)
def test_bad_arguments_name_what_was_received(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AAE(**{"image_shape": IMAGE_SHAPE, "latent_dim": LATENT_DIM, "num_filters": (4,), **kwargs})


def test_compile_and_fit_refuse_what_an_aae_has_no_meaning_for():
    aae = _aae()
    adam = keras.optimizers.Adam()
    with pytest.raises(ValueError, match="optimizer and d_optimizer and g_optimizer must be 3 different optimizer objects"):
        aae.compile(optimizer=adam, g_optimizer=adam)
    with pytest.raises(ValueError, match="AAE.compile does not take loss.*Received: loss='mse'"):
        aae.compile(loss="mse")
    with pytest.raises(ValueError, match="AAE.compile does not take metrics"):
        aae.compile(metrics=["mae"])
    with pytest.raises(ValueError, match="vae_or_path must be a kerasgen VAE or a path to one. Received: AAE"):
        AAE.from_vae(aae)
    with pytest.raises(ValueError, match="from_vae takes the architecture from the VAE. Received: latent_dim=3"):
        AAE.from_vae(_vae(), latent_dim=3)
    aae.compile()
    with pytest.raises(ValueError, match="does not weight images.*Received: a sample_weight"):
        aae.fit(_images(), sample_weight=np.ones(8), verbose=0)
    with pytest.raises(ValueError, match="sets model.optimizer.learning_rate, but an AAE has no single optimizer"):
        aae.fit(_images(), callbacks=[keras.callbacks.ReduceLROnPlateau()], verbose=0)


# --- Learning ------------------------------------------------------------------------------------


def test_training_lowers_the_reconstruction_loss():
    # 20 steps on 16 images of bars, in a graph as `fit` runs by default.
    aae = _aae(num_filters=(8,), hidden_dim=16, discriminator_units=(16,))
    aae.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        d_optimizer=keras.optimizers.Adam(1e-3),
        g_optimizer=keras.optimizers.Adam(1e-3),
    )
    history = aae.fit(_images(16), epochs=10, batch_size=8, verbose=0).history
    assert set(history) == {"reconstruction", "d_loss", "g_loss", "d_real", "d_fake"}
    assert history["reconstruction"][-1] < 0.7 * history["reconstruction"][0]
    assert all(np.isfinite(v).all() for v in history.values())
