"""Remedies for posterior collapse: cyclical KL annealing (Fu et al. 2019) and free bits (Kingma et al. 2016)."""

import dataclasses
import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from kerasgen import VAE, distribute
from kerasgen.config import TrainVAEConfig, from_arguments
from kerasgen.distributions import kl_per_dimension, standard_normal_prior
from kerasgen.losses import free_bits_kl, negative_elbo
from kerasgen.runs.vae import kl_cycle_length

tfd = tfp.distributions


def _tiny_vae(**kwargs):
    keras.utils.set_random_seed(0)
    return VAE(image_shape=(16, 16, 1), latent_dim=2, num_filters=(4,), hidden_dim=8, seed=0, **kwargs)


def _numpy_kl(loc, scale):
    """KL(N(loc, scale²) ‖ N(0, 1)) elementwise, float64."""
    loc, scale = np.asarray(loc, np.float64), np.asarray(scale, np.float64)
    return 0.5 * (scale**2 + loc**2 - 1.0) - np.log(scale)


# --- Cyclical annealing ------------------------------------------------------------------------


def test_cyclical_weight_follows_the_formula_at_every_step():
    beta, cycle, ratio = 2.0, 5, 0.4  # the weight rises over R·C = 2 steps of each 5
    vae = _tiny_vae(beta=beta, kl_cycle_steps=cycle, kl_cycle_ratio=ratio)
    vae.compile(optimizer="adam")
    for step in [*range(12), 5 * 10**6, 5 * 10**6 + 1, 5 * 10**6 + 4]:
        vae.optimizer.iterations.assign(step)
        expected = beta * min(1.0, (step % cycle) / (ratio * cycle))
        assert float(vae.kl_weight()) == pytest.approx(expected, abs=1e-6), step
    # 0 at each cycle start, beta/2 half-way up the ramp, beta after R·C steps, periodic.
    weights = []
    for step in range(10):
        vae.optimizer.iterations.assign(step)
        weights.append(float(vae.kl_weight()))
    np.testing.assert_allclose(weights, [0, 1, 2, 2, 2] * 2, atol=1e-6)


def test_cyclical_weight_is_the_one_training_uses(binary_images):
    vae = _tiny_vae(beta=2.0, kl_cycle_steps=4, kl_cycle_ratio=0.5)
    vae.compile(optimizer="adam")
    for step in range(5):
        logs = vae.fit(binary_images[:8], epochs=1, batch_size=8, verbose=0).history
        weight = 2.0 * min(1.0, (step % 4) / 2.0)
        loss, reconstruction, kl = logs["loss"][0], logs["reconstruction"][0], logs["kl"][0]
        assert loss == pytest.approx(reconstruction + weight * kl, rel=1e-6), step
    assert int(vae.optimizer.iterations) == 5


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(kl_cycle_steps=-1), "kl_cycle_steps must be an int >= 0. Received: kl_cycle_steps=-1"),
        (dict(kl_cycle_steps=2.5), "Received: kl_cycle_steps=2.5"),
        (dict(kl_cycle_steps=True), "Received: kl_cycle_steps=True"),
        (dict(kl_cycle_steps=1), "at least 2.*Received: kl_cycle_steps=1"),
        (dict(kl_cycle_steps=4, kl_cycle_ratio=0), r"kl_cycle_ratio must be a number in \(0, 1\]. Received: kl_cycle_ratio=0"),
        (dict(kl_cycle_steps=4, kl_cycle_ratio=1.5), "Received: kl_cycle_ratio=1.5"),
        (dict(kl_cycle_ratio="half"), "Received: kl_cycle_ratio='half'"),
        (
            dict(kl_cycle_steps=4, kl_warmup_steps=10),
            "use one. Received: kl_warmup_steps=10, kl_cycle_steps=4",
        ),
        (dict(free_bits=-0.5), "free_bits must be a number >= 0. Received: free_bits=-0.5"),
        (dict(free_bits=float("inf")), "free_bits must be a finite number >= 0. Received: free_bits=inf"),
        (dict(free_bits=0.5, posterior="full"), "needs posterior='diagonal'.*Received: free_bits=0.5, posterior='full'"),
        (dict(free_bits=0.5, num_importance_samples=3), "Received: free_bits=0.5, num_importance_samples=3"),
    ],
)
def test_bad_remedy_arguments_name_what_was_received(kwargs, match):
    with pytest.raises(ValueError, match=match):
        VAE(image_shape=(16, 16, 1), latent_dim=2, num_filters=(4,), hidden_dim=8, **kwargs)


# --- Free bits: the objective ------------------------------------------------------------------


def test_free_bits_objective_equals_the_hand_computation_and_floors_the_gradient():
    # Two images, two dimensions: dimension 0's batch-mean KL (0.03) is under the floor, 1's (6.7) above.
    loc = tf.Variable([[0.2, 4.0], [-0.1, 3.0]])
    scale = tf.Variable([[1.2**0.5, 3**0.5], [0.9, 1.5]])
    x = np.zeros((2, 2, 2, 1), "float32")
    likelihood = tfd.Independent(tfd.Bernoulli(logits=tf.fill([2, 2, 2, 1], 0.3)), 3)
    free_bits, beta = 0.5, 1.5
    with tf.GradientTape() as tape:
        posterior = tfd.MultivariateNormalDiag(loc, scale)
        loss, terms = negative_elbo(x, likelihood, posterior, standard_normal_prior(2), beta=beta, free_bits=free_bits)
    kl = _numpy_kl(loc.numpy(), scale.numpy())  # [2, 2]
    per_dimension = kl.mean(axis=0)
    assert per_dimension[0] < free_bits < per_dimension[1]
    reconstruction = 4 * np.log1p(np.exp(0.3))  # 4 pixels of −log Bernoulli(0 | logit 0.3)
    assert float(terms["reconstruction"]) == pytest.approx(reconstruction, rel=1e-6)
    assert float(loss) == pytest.approx(reconstruction + beta * (free_bits + per_dimension[1]), rel=1e-6)
    # The reported KL and ELBO are the true, unfloored values.
    assert float(terms["kl"]) == pytest.approx(kl.sum(axis=1).mean(), rel=1e-5)
    assert float(terms["elbo"]) == pytest.approx(-(reconstruction + kl.sum(axis=1).mean()), rel=1e-6)
    loc_gradient, scale_gradient = (g.numpy() for g in tape.gradient(loss, [loc, scale]))
    # Under the floor: no gradient at all; above it: β · ∂(mean KL_1), with ∂KL/∂μ = μ.
    np.testing.assert_array_equal(loc_gradient[:, 0], 0.0)
    np.testing.assert_array_equal(scale_gradient[:, 0], 0.0)
    np.testing.assert_allclose(loc_gradient[:, 1], beta * loc.numpy()[:, 1] / 2, rtol=1e-6)
    np.testing.assert_allclose(scale_gradient[:, 1], beta * (scale.numpy()[:, 1] - 1 / scale.numpy()[:, 1]) / 2, rtol=1e-5)


def test_free_bits_batch_means_are_weighted_by_sample_weight():
    posterior = tfd.MultivariateNormalDiag([[0.2, 4.0], [-0.1, 3.0], [2.0, 0.0]], [[1.0, 1.0], [0.9, 1.5], [1.0, 2.0]])
    weights = np.array([1.0, 3.0, 0.0], "float32")
    kl = _numpy_kl(posterior.mean().numpy(), posterior.stddev().numpy())
    per_dimension = (weights[:, None] * kl).sum(axis=0) / weights.sum()
    expected = np.maximum(1.0, per_dimension).sum()
    assert float(free_bits_kl(posterior, standard_normal_prior(2), 1.0, weights)) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    "posterior, prior, received",
    [
        (
            tfd.MultivariateNormalTriL(tf.zeros([3, 2]), tf.eye(2, batch_shape=[3])),
            standard_normal_prior(2),
            "posterior=MultivariateNormalTriL",
        ),
        (
            tfd.MultivariateNormalDiag(tf.zeros([3, 2])),
            tfd.MixtureSameFamily(tfd.Categorical(logits=[0.0, 0.0]), tfd.MultivariateNormalDiag([[1.0, 0.0], [-1.0, 0.0]])),
            "prior=MixtureSameFamily",
        ),
    ],
)
def test_free_bits_refuses_what_is_not_a_diagonal_gaussian(posterior, prior, received):
    with pytest.raises(ValueError, match=f"diagonal Gaussian posterior and prior.*Received: .*{received}"):
        free_bits_kl(posterior, prior, 0.5)


def test_per_dimension_kls_of_diagonal_gaussians_sum_to_the_kl():
    # The moved kl_per_dimension, on the style guide's known values.
    q = tfd.MultivariateNormalDiag([[0.2, 4.0]], [[1.2**0.5, 3**0.5]])
    np.testing.assert_allclose(kl_per_dimension(q, standard_normal_prior(2)).numpy(), [[0.0288, 8.4506]], atol=1e-4)


# --- Free bits in the VAE ----------------------------------------------------------------------


def test_free_bits_changes_the_loss_but_not_the_reported_kl_or_elbo(binary_images):
    results = {}
    for free_bits in (0.0, 5.0):
        vae = _tiny_vae(free_bits=free_bits)
        vae.compile(optimizer="adam")
        results[free_bits] = vae.evaluate(binary_images, batch_size=16, verbose=0, return_dict=True)
    plain, floored = results[0.0], results[5.0]
    for name in ("kl", "reconstruction", "elbo"):
        assert floored[name] == plain[name], name
    # Both dimensions' KL is under 5 nats at initialization, so each adds exactly the floor.
    assert plain["kl"] < 5.0
    assert floored["loss"] == pytest.approx(plain["reconstruction"] + 2 * 5.0, rel=1e-6)


def test_a_vae_with_free_bits_and_cycles_trains_with_a_finite_loss(binary_images):
    vae = _tiny_vae(free_bits=0.2, kl_cycle_steps=4, beta=1.0)
    vae.compile(optimizer=keras.optimizers.Adam(1e-2))
    before = vae.get_weights()
    history = vae.fit(binary_images, epochs=3, batch_size=16, verbose=0).history
    assert set(history) == {"loss", "elbo", "reconstruction", "kl"}
    assert np.all(np.isfinite(history["loss"]))
    # One step per epoch, so each row is one step's: at weight w the loss is the reconstruction
    # plus w times the floored KL, at least the true KL.
    for step, (loss, reconstruction, kl) in enumerate(zip(history["loss"], history["reconstruction"], history["kl"])):
        weight = min(1.0, step / 2.0)
        assert loss >= reconstruction + weight * kl - 1e-4
        assert loss >= reconstruction + weight * 2 * 0.2 - 1e-4
    assert any(not np.array_equal(b, a) for b, a in zip(before, vae.get_weights()))


def test_keras_file_round_trip_keeps_the_remedies(tmp_path, binary_images):
    vae = _tiny_vae(beta=2.0, kl_cycle_steps=8, kl_cycle_ratio=0.75, free_bits=0.3)
    vae.compile(optimizer="adam")
    vae.fit(binary_images, epochs=1, batch_size=8, verbose=0)
    vae.save(tmp_path / "vae.keras")
    restored = keras.saving.load_model(tmp_path / "vae.keras")
    assert (restored.kl_cycle_steps, restored.kl_cycle_ratio, restored.free_bits) == (8, 0.75, 0.3)
    assert restored.get_config() == vae.get_config()
    # The step count comes back with the optimizer, so the cycle continues where it was.
    assert int(restored.optimizer.iterations) == 2
    assert float(restored.kl_weight()) == pytest.approx(float(vae.kl_weight())) == pytest.approx(2.0 * 2 / 6)
    # A model saved before these settings existed loads with them off.
    old = {k: v for k, v in vae.get_config().items() if k not in ("kl_cycle_steps", "kl_cycle_ratio", "free_bits")}
    loaded = VAE.from_config(old)
    assert (loaded.kl_cycle_steps, loaded.kl_cycle_ratio, loaded.free_bits) == (0, 0.5, 0.0)


def test_two_replicas_floor_the_global_batch_as_one_device_does():
    """Under `MirroredStrategy` the floor compares the global batch's per-dimension KL, not each
    replica's half: λ is chosen so that one replica's half is under it while the whole batch is above."""
    rng = np.random.default_rng(1)
    images = (rng.uniform(size=(16, 16, 16, 1)) > 0.5).astype("float32")
    probe = _tiny_vae()
    loc, scale = (keras.ops.convert_to_numpy(t) for t in probe.encode(images))
    kl = _numpy_kl(loc, scale)
    halves, whole = np.stack([kl[:8].mean(axis=0), kl[8:].mean(axis=0)]), kl.mean(axis=0)
    dimension = int(np.argmax(np.abs(halves[0] - halves[1])))
    free_bits = float((halves[:, dimension].min() + whole[dimension]) / 2)
    assert halves[:, dimension].min() < free_bits < whole[dimension]

    results = []
    # The process's one mirrored strategy (conftest's 2 logical CPUs), not a new MirroredStrategy:
    # every MirroredStrategy numbers its collectives from the same keys, so a second one over the
    # same devices collides with an earlier test's ("Shape mismatch in the collective instance").
    for strategy in (tf.distribute.get_strategy(), distribute.get_strategy("mirrored")):
        with strategy.scope():
            vae = _tiny_vae(free_bits=free_bits)
            vae.compile(optimizer=keras.optimizers.Adam(1e-2))
        data = tf.data.Dataset.from_tensor_slices(images).batch(16)
        history = vae.fit(data, epochs=2, verbose=0, shuffle=False).history
        results.append((history, vae.get_weights()))
    (one_history, one_weights), (two_history, two_weights) = results
    for name in one_history:
        np.testing.assert_allclose(two_history[name], one_history[name], rtol=1e-5, err_msg=name)
    for one, two in zip(one_weights, two_weights):
        np.testing.assert_allclose(two, one, atol=1e-5)


# --- Config and command line -------------------------------------------------------------------


def test_config_round_trips_and_derives_the_cycle_length():
    config = TrainVAEConfig(kl_cycles=4, kl_cycle_ratio=0.25, free_bits=0.5, epochs=3)
    # As config.json stores it: JSON, whose lists come back as the config's tuples.
    saved = json.loads(json.dumps(config.to_dict()))
    assert TrainVAEConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in saved.items()}) == config
    assert kl_cycle_length(config, steps_per_epoch=10) == math.ceil(30 / 4) == 8
    assert kl_cycle_length(TrainVAEConfig(), steps_per_epoch=10) == 0
    # 31 cycles in 30 steps: cycles of one step, whose KL weight would stay 0.
    with pytest.raises(ValueError, match="cycles of 1 step.*at least 2.*30 steps. Received: --kl-cycles 31"):
        kl_cycle_length(dataclasses.replace(config, kl_cycles=31), steps_per_epoch=10)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(kl_cycles=2, kl_warmup_epochs=3), "use one. Received: --kl-warmup-epochs 3, --kl-cycles 2"),
        (dict(kl_cycles=2, kl_cycle_ratio=1.5), "--kl-cycle-ratio must be <= 1. Received: --kl-cycle-ratio 1.5"),
        (dict(kl_cycle_ratio=0.0), "--kl-cycle-ratio must be a number > 0. Received: --kl-cycle-ratio 0.0"),
        (dict(kl_cycles=-1), "--kl-cycles must be an int >= 0. Received: --kl-cycles -1"),
        (dict(free_bits=-1.0), "--free-bits must be a number >= 0. Received: --free-bits -1.0"),
        (dict(free_bits=0.5, posterior="full"), "Received: --free-bits 0.5, --posterior full"),
        (dict(free_bits=0.5, importance_samples=4), "Received: --free-bits 0.5, --importance-samples 4"),
    ],
)
def test_config_refuses_bad_remedies(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainVAEConfig(**kwargs)


def test_cli_parses_the_remedy_flags_into_the_config():
    from kerasgen.cli import build_parser

    args = build_parser().parse_args(["train-vae", "--kl-cycles", "4", "--kl-cycle-ratio", "0.25", "--free-bits", "0.5"])
    config = from_arguments(TrainVAEConfig, args)
    assert (config.kl_cycles, config.kl_cycle_ratio, config.free_bits) == (4, 0.25, 0.5)
    defaults = from_arguments(TrainVAEConfig, build_parser().parse_args(["train-vae"]))
    assert (defaults.kl_cycles, defaults.kl_cycle_ratio, defaults.free_bits) == (0, 0.5, 0.0)
    with pytest.raises(ValueError, match="--kl-cycles and --kl-warmup-epochs"):
        from_arguments(TrainVAEConfig, build_parser().parse_args(["train-vae", "--kl-cycles", "2", "--kl-warmup-epochs", "1"]))
