"""The VAE-GAN: warm start, gradient hygiene (each optimizer moves only its part), losses by hand, saving, the equilibrium rule."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasgen import distribute
from kerasgen.distributions import diagonal_gaussian
from kerasgen.losses import vaegan_losses
from kerasgen.models import VAE, VAEGAN
from kerasgen.networks import build_discriminator

IMAGE_SHAPE = (8, 8, 1)


def _vae():
    keras.utils.set_random_seed(0)
    return VAE(image_shape=IMAGE_SHAPE, latent_dim=2, num_filters=(4,), hidden_dim=8, seed=0)


def _images(n=8):
    return np.random.default_rng(0).uniform(size=(n, *IMAGE_SHAPE)).astype("float32")


def _vaegan(**kwargs):
    discriminator = build_discriminator(IMAGE_SHAPE, num_filters=(4, 8))
    return VAEGAN.from_vae(_vae(), discriminator=discriminator, **{"seed": 0, **kwargs})


def _compile(model, rates=(1e-2, 1e-2, 1e-2)):
    # Eager: a step is traced in graph mode by test_model_family.py and tests/distributed_cases.py.
    model.compile(*(keras.optimizers.SGD(rate) for rate in rates), run_eagerly=True)
    return model


def _snapshot(model):
    return {part.name: [w.copy() for w in part.get_weights()] for part in (model.encoder, model.decoder, model.discriminator)}


def _moved(before, after):
    return {name for name in before if any(not np.array_equal(a, b) for a, b in zip(before[name], after[name]))}


def test_from_vae_starts_as_the_vae():
    vae = _vae()
    model = VAEGAN.from_vae(vae, discriminator=build_discriminator(IMAGE_SHAPE, num_filters=(4,)))
    x = _images()
    np.testing.assert_allclose(model.reconstruct(x), vae.reconstruct(x), atol=1e-6)
    for ours, theirs in zip(model.encode(x), vae.encode(x)):
        np.testing.assert_allclose(ours, theirs, atol=1e-6)
    np.testing.assert_allclose(model.sample(4, seed=3), vae.sample(4, seed=3), atol=1e-6)
    assert model.feature_layer == model.discriminator.layers[-3].name  # The last convolution.
    assert not model.defines_likelihood


@pytest.mark.parametrize("trained", [0, 1, 2])
def test_each_optimizer_moves_only_its_own_part(trained):
    """With only one part's learning rate non-zero, one step moves exactly that part: no loss leaks."""
    rates = [0.0, 0.0, 0.0]
    rates[trained] = 0.1
    model = _compile(_vaegan(), rates)
    before = _snapshot(model)
    model.train_on_batch(_images())
    parts = [model.encoder.name, model.decoder.name, model.discriminator.name]
    assert _moved(before, _snapshot(model)) == {parts[trained]}


def test_encode_decode_and_sample_use_the_weight_averages():
    """After one step, each average is decay·before + (1 − decay)·after, and the user-facing operations read it."""
    model = _compile(_vaegan(ema_decay=0.25))
    x = _images()
    before = _snapshot(model)
    model.train_on_batch(x)
    after = _snapshot(model)
    for network, average in ((model.encoder, model.ema_encoder), (model.decoder, model.ema_decoder)):
        expected = [0.25 * b + 0.75 * a for b, a in zip(before[network.name], after[network.name])]
        for got, want in zip(average.get_weights(), expected):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    z = np.random.default_rng(1).normal(size=(4, 2)).astype("float32")
    np.testing.assert_allclose(model.decode(z), keras.ops.sigmoid(model.ema_decoder(z)), atol=1e-6)
    assert not np.allclose(model.decode(z), keras.ops.sigmoid(model.decoder(z)), atol=1e-6)
    np.testing.assert_allclose(model.encode(x)[0], model.ema_encoder(x)[:, :2], atol=1e-6)
    # Without averages the trained networks answer.
    plain = _compile(_vaegan(ema_decay=0.0))
    plain.train_on_batch(x)
    assert plain.ema_encoder is None and plain.ema_decoder is None
    np.testing.assert_allclose(plain.decode(z), keras.ops.sigmoid(plain.decoder(z)), atol=1e-6)


def test_the_discriminator_update_leaves_encoder_and_decoder_unchanged():
    model = _compile(_vaegan(), (0.0, 0.0, 0.1))
    before = _snapshot(model)
    model.fit(_images(16), batch_size=8, epochs=2, verbose=0)
    moved = _moved(before, _snapshot(model))
    assert moved == {model.discriminator.name}
    assert int(model.d_optimizer.iterations) == 4


def _softplus(x):
    return np.logaddexp(0.0, x)


@pytest.mark.parametrize("feature_scale", [2.0, "fitted"])
def test_losses_equal_a_hand_computation(feature_scale):
    """The model's three losses, recomputed in numpy from the same noise, the same networks' outputs."""
    model = _vaegan(gamma=0.3, beta=0.7, feature_scale=feature_scale, r1_weight=0.0)
    x = _images(4)
    losses, terms, _ = model.compute_losses(tf.constant(x), seed_generator=keras.random.SeedGenerator(5))

    seed = distribute.next_seed(keras.random.SeedGenerator(5))
    noise = tf.random.stateless_normal((4, 2, 2), seed=seed).numpy()
    loc, scale = (t.numpy() for t in model.encode(x))
    z = loc + scale * noise[:, 0]
    reconstructions, prior_samples = model.decode(z).numpy(), model.decode(noise[:, 1]).numpy()
    features = keras.Model(model.discriminator.input, model.discriminator.get_layer(model.feature_layer).output)
    real_f, fake_f = features(x).numpy().reshape(4, -1), features(reconstructions).numpy().reshape(4, -1)
    logits = {name: model.discriminator(images).numpy().reshape(-1) for name, images in
              (("real", x), ("reconstruction", reconstructions), ("prior", prior_samples))}

    # "fitted": σ² is the batch's mean squared feature error, so the term is n/2·(1 + log 2πσ²).
    sigma = 2.0 if feature_scale == 2.0 else np.sqrt(np.mean((real_f - fake_f) ** 2))
    reconstruction = np.mean(
        np.sum(0.5 * ((real_f - fake_f) / sigma) ** 2 + np.log(sigma) + 0.5 * np.log(2 * np.pi), axis=1)
    )
    if feature_scale == "fitted":
        np.testing.assert_allclose(reconstruction, real_f.shape[1] / 2 * (1 + np.log(2 * np.pi * sigma**2)), rtol=1e-6)
    kl = np.mean(np.sum(0.5 * (scale**2 + loc**2 - 1.0) - np.log(scale), axis=1))
    d_loss = sum(np.mean(_softplus(sign * logits[name])) for name, sign in
                 (("real", -1), ("reconstruction", 1), ("prior", 1)))
    g_loss = np.mean(_softplus(-logits["reconstruction"])) + np.mean(_softplus(-logits["prior"]))
    np.testing.assert_allclose(terms["reconstruction"], reconstruction, rtol=1e-5)
    np.testing.assert_allclose(terms["kl"], kl, rtol=1e-5)
    np.testing.assert_allclose(losses["encoder"], 0.7 * kl + reconstruction, rtol=1e-5)
    np.testing.assert_allclose(losses["decoder"], 0.3 * reconstruction + g_loss, rtol=1e-5)
    np.testing.assert_allclose(losses["discriminator"], d_loss, rtol=1e-5)


def test_vaegan_losses_known_values():
    """Identical features: L_llike is the Gaussian's normalizer only; zero logits: each cross-entropy is ln 2."""
    posterior = keras.ops.convert_to_tensor(np.zeros((3, 4), "float32"))
    from kerasgen.distributions import diagonal_gaussian, standard_normal_prior

    features = tf.random.stateless_normal((3, 5, 2), seed=(1, 2))
    zeros = tf.zeros((3,))
    losses, terms = vaegan_losses(
        features, features, diagonal_gaussian(posterior), standard_normal_prior(2), zeros, zeros, zeros, gamma=2.0
    )
    normalizer = 10 * 0.5 * np.log(2 * np.pi)
    # softplus(0) + inverse-softplus offset: the posterior's scale is softplus(0) + 1e-5 ≈ ln 2.
    scale = np.log(2.0) + 1e-5
    np.testing.assert_allclose(terms["reconstruction"], normalizer, rtol=1e-6)
    np.testing.assert_allclose(terms["kl"], 2 * (0.5 * (scale**2 - 1) - np.log(scale)), rtol=1e-5)
    np.testing.assert_allclose(terms["d_loss"], 3 * np.log(2.0), rtol=1e-6)
    np.testing.assert_allclose(losses["decoder"], 2.0 * normalizer + 2 * np.log(2.0), rtol=1e-6)


def _winning_discriminator():
    """D(x) = 10/32 · Σx − 15: +5 on all-ones images, about −5 on the untrained decoder's grey ones."""
    images = keras.Input(IMAGE_SHAPE)
    flat = keras.layers.Flatten(name="flat")(images)
    logit = keras.layers.Dense(1, kernel_initializer=keras.initializers.Constant(10 / 32),
                               bias_initializer=keras.initializers.Constant(-15.0))(flat)
    return keras.Model(images, logit)


def test_equilibrium_rule_skips_a_winning_discriminator():
    model = VAEGAN.from_vae(
        _vae(), discriminator=_winning_discriminator(), feature_layer="flat", r1_weight=0.0, equilibrium_margin=0.3, seed=0
    )
    _compile(model)
    logs = model.train_on_batch(np.ones((8, *IMAGE_SHAPE), "float32"), return_dict=True)
    assert logs["d_real"] > 0.9 and logs["d_fake"] < 0.1
    assert logs["d_trained"] == 0.0 and logs["g_trained"] == 1.0
    assert int(model.d_optimizer.iterations) == 0 and int(model.g_optimizer.iterations) == 1
    assert int(model.e_optimizer.iterations) == 1


def test_keras_round_trip_and_compiled_reload(tmp_path):
    model = _compile(_vaegan(equilibrium_margin=0.2, beta=0.5))
    x = _images()
    model.fit(x, batch_size=8, epochs=1, verbose=0)
    path = str(tmp_path / "vaegan.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded.reconstruct(x), model.reconstruct(x), atol=1e-6)
    np.testing.assert_allclose(loaded.sample(4, seed=1), model.sample(4, seed=1), atol=1e-6)
    assert loaded.get_config()["equilibrium_margin"] == 0.2 and loaded.beta == 0.5 and loaded.feature_layer == model.feature_layer
    assert [int(o.iterations) for o in (loaded.e_optimizer, loaded.g_optimizer, loaded.d_optimizer)] == [1, 1, 1]
    # Training continues from the reloaded optimizers.
    loaded.fit(x, batch_size=8, epochs=1, verbose=0)
    assert int(loaded.d_optimizer.iterations) == 2


def test_bad_arguments_name_what_was_received():
    with pytest.raises(ValueError, match="no layer 'nope'.*Received: feature_layer='nope'"):
        _vaegan(feature_layer="nope")
    with pytest.raises(ValueError, match="gamma must be a number >= 0. Received: gamma=-1"):
        _vaegan(gamma=-1)
    with pytest.raises(ValueError, match=r"ema_decay must be a number in \[0, 1\). Received: ema_decay=1"):
        _vaegan(ema_decay=1)
    with pytest.raises(ValueError, match="beta must be a number >= 0. Received: beta='1'"):
        _vaegan(beta="1")
    with pytest.raises(ValueError, match="equilibrium_margin.*Received: equilibrium_margin=-0.1"):
        _vaegan(equilibrium_margin=-0.1)
    with pytest.raises(ValueError, match="init must be one of 'vae', 'scratch'. Received: init='decoder'"):
        VAEGAN.from_vae(_vae(), init="decoder")
    model = _vaegan()
    optimizer = keras.optimizers.Adam()
    with pytest.raises(ValueError, match="must be 3 different optimizer objects"):
        model.compile(optimizer, optimizer, keras.optimizers.Adam())
    with pytest.raises(ValueError, match="VAEGAN.compile does not take loss.*Received: loss='mse'"):
        model.compile(loss="mse")
    _compile(model)
    with pytest.raises(ValueError, match="A VAE-GAN does not weight images.*Received: a sample_weight"):
        model.fit(_images(), sample_weight=np.ones(8), verbose=0)


def test_scratch_init_keeps_the_architecture_not_the_weights():
    vae = _vae()
    model = VAEGAN.from_vae(vae, init="scratch", discriminator=build_discriminator(IMAGE_SHAPE, num_filters=(4,)))
    assert [w.shape for w in model.encoder.get_weights()] == [w.shape for w in vae.encoder.get_weights()]
    assert not np.allclose(model.reconstruct(_images()), vae.reconstruct(_images()))


# --- Gradient routing: each part follows the loss Larsen et al. give it ---------------------------


def _recording_sgd(recorded):
    """SGD at rate 0 that appends `(variable, gradient)` for each gradient the train step hands it (eager)."""

    class RecordingSGD(keras.optimizers.SGD):
        def apply(self, grads, trainable_variables=None):
            recorded.extend((variable, np.array(gradient)) for gradient, variable in zip(grads, trainable_variables))
            return super().apply(grads, trainable_variables)

    return RecordingSGD(0.0)


def _applied(recorded, variable):
    """The gradients applied to `variable` (a list: empty if none, one per optimizer that got it)."""
    return [gradient for target, gradient in recorded if target is variable]


def _paper_losses(model, x, noise, gamma, beta, r1_weight, feature_scale):
    """Larsen et al.'s losses on `x` for the step's noise, written from the paper, not from `vaegan_losses`.

    Returns `{"encoder": L_prior·β + L_llike, "decoder": γ·L_llike + GAN, "discriminator": GAN + R1}`
    and the tape that recorded them, with the networks in training mode.
    """
    discriminator = model.discriminator
    features_and_logits = keras.Model(
        discriminator.input, [discriminator.get_layer(model.feature_layer).output, discriminator.output]
    )

    def d(images):
        features, logits = features_and_logits(images, training=True)
        return tf.reshape(features, (len(x), -1)), tf.reshape(logits, (-1,))

    tape = tf.GradientTape(persistent=True)
    with tape:
        # q(z|x) = N(μ, σ²), the reparameterized z = μ + σ·ε, and z_p ~ p(z) from the same draw.
        q = diagonal_gaussian(model.encoder(x, training=True))
        loc, scale = q.mean(), q.stddev()
        z = loc + scale * noise[:, 0]
        # Bernoulli decoder: its image is the mean, σ(logits).
        reconstructions = tf.sigmoid(model.decoder(z, training=True))
        prior_samples = tf.sigmoid(model.decoder(noise[:, 1], training=True))
        # R1, kerasgen's addition to D's loss: the batch mean of ‖∇_x D(x)‖² on real images.
        with tf.GradientTape() as r1_tape:
            r1_tape.watch(x)
            real_features, real_logits = d(x)
            logit_sum = tf.reduce_sum(real_logits)
        r1 = tf.reduce_mean(tf.reduce_sum(tf.reshape(r1_tape.gradient(logit_sum, x), (len(x), -1)) ** 2, axis=1))
        reconstruction_features, reconstruction_logits = d(reconstructions)
        _, prior_logits = d(prior_samples)

        # L_prior = KL(N(μ, σ²) ‖ N(0, I)) in closed form.
        l_prior = tf.reduce_mean(tf.reduce_sum(0.5 * (scale**2 + loc**2 - 1.0) - tf.math.log(scale), axis=1))
        # L_llike = −log N(D_l(x) | D_l(x̃), σ² I); a fitted σ is the batch's RMS feature error, held constant.
        error = real_features - reconstruction_features
        sigma = feature_scale
        if feature_scale == "fitted":
            sigma = tf.sqrt(tf.stop_gradient(tf.reduce_mean(error**2)))
        l_llike = tf.reduce_mean(
            tf.reduce_sum(0.5 * (error / sigma) ** 2 + tf.math.log(sigma) + 0.5 * np.log(2 * np.pi), axis=1)
        )
        # L_GAN: D's cross-entropy, real x labelled 1, both kinds of fakes 0 (log σ(d) = −softplus(−d)).
        l_gan = (
            tf.reduce_mean(tf.nn.softplus(-real_logits))
            + tf.reduce_mean(tf.nn.softplus(reconstruction_logits))
            + tf.reduce_mean(tf.nn.softplus(prior_logits))
        )
        # The decoder's non-saturating adversarial loss −log σ(D(·)) on both kinds of fakes.
        g_adversarial = tf.reduce_mean(tf.nn.softplus(-reconstruction_logits)) + tf.reduce_mean(
            tf.nn.softplus(-prior_logits)
        )
        losses = {
            "encoder": beta * l_prior + l_llike,
            "decoder": gamma * l_llike + g_adversarial,
            "discriminator": l_gan + 0.5 * r1_weight * r1,
        }
    return losses, tape


@pytest.mark.parametrize("feature_scale", [1.0, "fitted"])
def test_each_part_gets_the_gradient_of_its_own_loss_from_the_paper(feature_scale):
    """The gradients `train_step` applies are ∇ of Larsen et al.'s losses, each part its own:
    encoder ← β·L_prior + L_llike, decoder ← γ·L_llike + GAN (non-saturating), discriminator ← GAN (+ R1).

    The references are computed by `tf.GradientTape` on the losses written above from the paper's
    definitions, for the noise the step draws; the test first checks that the three losses'
    gradients differ on each part, so routing any part to another part's loss cannot pass.
    """
    gamma, beta, r1_weight = 0.3, 0.7, 10.0
    model = _vaegan(gamma=gamma, beta=beta, r1_weight=r1_weight, feature_scale=feature_scale)
    recorded = []
    model.compile(*(_recording_sgd(recorded) for _ in range(3)), run_eagerly=True)
    x = tf.constant(_images())
    # The step's noise: its seed generator's next seed, ε for z ~ q(z|x) and z_p ~ p(z) in one draw.
    twin = keras.random.SeedGenerator(0)
    twin.state.assign(model.seed_generator.state)
    noise = tf.random.stateless_normal((len(x), 2, model.latent_dim), seed=distribute.next_seed(twin))
    losses, tape = _paper_losses(model, x, noise, gamma, beta, r1_weight, feature_scale)
    parts = {"encoder": model.encoder, "decoder": model.decoder, "discriminator": model.discriminator}
    reference = {
        (loss, part): tape.gradient(losses[loss], network.trainable_variables)
        for loss in losses for part, network in parts.items()
    }

    model.train_on_batch(x)

    for part, network in parts.items():
        want = reference[(part, part)]
        size = max(float(np.max(np.abs(g))) for g in want if g is not None)
        assert size > 0, part
        # Another part's loss moves this part's weights differently (or not at all).
        for other in losses:
            if other != part:
                gradients = reference[(other, part)]
                distance = max(
                    float(np.max(np.abs(w - (0.0 if g is None else g)))) for w, g in zip(want, gradients) if w is not None
                )
                assert distance > 0.05 * size, (part, other)
        for variable, gradient in zip(network.trainable_variables, want):
            applied = _applied(recorded, variable)
            if gradient is None:
                assert not applied, variable.path
                continue
            assert len(applied) == 1, variable.path
            np.testing.assert_allclose(
                applied[0], gradient, rtol=1e-4, atol=1e-5 * size, err_msg=f"{part}: {variable.path}"
            )
