import json

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from kerasgen import VAE
from kerasgen.losses import log_importance_weights
from kerasgen.pixelcnn import AutoregressiveBernoulli, build_pixelcnn


def _network(image_shape=(8, 8, 1), num_layers=4, conditioning_channels=3, num_filters=8, conditioning="spatial"):
    keras.utils.set_random_seed(0)
    return build_pixelcnn(
        image_shape, conditioning_channels, num_layers=num_layers, num_filters=num_filters, conditioning=conditioning
    )


def _conditioning(batch_size, image_shape=(8, 8, 1), channels=3, seed=0, conditioning="spatial"):
    shape = (batch_size, *image_shape[:2], channels) if conditioning == "spatial" else (batch_size, channels)
    return tf.random.stateless_normal(shape, seed=(seed, 1))


def _binary(batch_size, image_shape=(8, 8, 1), seed=0):
    images = np.random.default_rng(seed).uniform(size=(batch_size, *image_shape)) < 0.5
    return tf.constant(images, tf.float32)


def _jacobian(network, image_shape, conditioning="spatial", seed=0):
    """d logits / d image for one image, `[H*W, C, H*W, C]` in raster order."""
    height, width, channels = image_shape
    x = tf.random.stateless_uniform((1, *image_shape), seed=(1, 2 + seed))
    h = _conditioning(1, image_shape, conditioning=conditioning, seed=seed)
    with tf.GradientTape() as tape:
        tape.watch(x)
        logits = network([x, h])
    jacobian = tape.jacobian(logits, x).numpy()
    return jacobian.reshape(height * width, channels, height * width, channels)


def _tiny_vae(**kwargs):
    keras.utils.set_random_seed(0)
    defaults = dict(image_shape=(8, 8, 1), latent_dim=2, num_filters=(4,), hidden_dim=8, seed=0, decoder="pixelcnn")
    return VAE(**{**defaults, "pixelcnn_layers": 2, "pixelcnn_filters": 8, **kwargs})


# --- The network: causal, no blind spot, conditioned -----------------------------------------


@pytest.mark.parametrize("conditioning", ["spatial", "global"])
def test_each_logit_sees_exactly_the_earlier_pixels_with_no_blind_spot(conditioning):
    # 4 layers of 3x3: pixel (5, 4) of an 8x8 image reaches every earlier pixel, the up-right
    # ones a plain masked PixelCNN misses included.
    jacobian = _jacobian(_network(num_layers=4, conditioning=conditioning), (8, 8, 1), conditioning)[:, 0, :, 0]
    seen = jacobian != 0
    # Never the pixel itself nor a later one, for every pixel.
    assert not np.triu(seen).any()
    k = 5 * 8 + 4
    np.testing.assert_array_equal(seen[k], np.arange(64) < k)


def test_a_5x5_layer_sees_three_rows_above_and_three_pixels_to_the_left():
    keras.utils.set_random_seed(0)
    network = build_pixelcnn((8, 8, 1), 3, num_layers=1, num_filters=8, kernel_size=5)
    seen = _jacobian(network, (8, 8, 1))[:, 0, :, 0] != 0
    expected = np.zeros((8, 8), bool)
    expected[1:4, 2:7] = True  # rows i-3 .. i-1; columns j-2 .. j+2
    expected[4, 1:4] = True  # row i: columns j-3 .. j-1
    np.testing.assert_array_equal(seen[4 * 8 + 4].reshape(8, 8), expected)


def test_one_layer_sees_two_rows_above_and_two_pixels_to_the_left():
    seen = _jacobian(_network(num_layers=1), (8, 8, 1))[:, 0, :, 0] != 0
    expected = np.zeros((8, 8), bool)
    expected[2:4, 3:6] = True  # rows i-2, i-1; columns j-1 .. j+1 (the up-right pixel too)
    expected[4, 2:4] = True  # row i: columns j-2, j-1
    np.testing.assert_array_equal(seen[4 * 8 + 4].reshape(8, 8), expected)


@pytest.mark.parametrize("conditioning", ["spatial", "global"])
def test_colour_channels_are_ordered_red_green_blue_within_a_pixel(conditioning):
    # The exact Jacobian on 3 channels: the logit of channel c at pixel p sees channel c' of pixel
    # q exactly when q is earlier, or q is p and c' < c.
    network = _network((5, 5, 3), num_layers=3, num_filters=24, conditioning=conditioning)
    # [output pixel, c, input pixel, c'], over three inputs (a ReLU can zero one path at one input).
    seen = np.any([_jacobian(network, (5, 5, 3), conditioning, seed) != 0 for seed in range(3)], axis=0)
    earlier_pixel = np.arange(25)[None, :] < np.arange(25)[:, None]
    allowed = earlier_pixel[:, None, :, None] | (
        np.eye(25, dtype=bool)[:, None, :, None] & (np.arange(3)[None, None, None, :] < np.arange(3)[None, :, None, None])
    )
    assert not (seen & ~allowed).any()  # never itself, a later channel or a later pixel
    # Within a pixel: G sees R, B sees R and G, R sees none of its own pixel.
    for k in range(25):
        np.testing.assert_array_equal(seen[k, :, k, :], np.tril(np.ones((3, 3), bool), -1))
    # Three layers reach every channel of every earlier pixel from pixel (3, 3).
    k = 3 * 5 + 3
    assert seen[k, :, :k, :].all()


def test_a_colour_network_needs_feature_maps_in_whole_groups_per_channel():
    with pytest.raises(ValueError, match="multiple of the image's 3 channels.*Received: num_filters=8"):
        build_pixelcnn((4, 4, 3), 2, num_filters=8)


def test_the_conditioning_map_moves_the_logits_and_alone_sets_the_first_pixel():
    network = _network()
    x = _binary(2)
    h = _conditioning(1)
    logits = network([x, tf.concat([h, h], 0)]).numpy()
    # The first pixel has no earlier pixels: its logit is the same for any image.
    assert logits[0, 0, 0, 0] == logits[1, 0, 0, 0]
    assert not np.allclose(logits[0], logits[1])
    other = network([x, _conditioning(2, seed=5)]).numpy()
    assert np.all(other[:, 0, 0, 0] != logits[:, 0, 0, 0])
    assert np.abs(other - logits).min() > 0


def test_a_global_conditioning_vector_moves_every_logit_and_alone_sets_the_first_pixel():
    network = _network(conditioning="global")
    x = _binary(2)
    h = _conditioning(1, conditioning="global")
    logits = network([x, tf.concat([h, h], 0)]).numpy()
    assert logits[0, 0, 0, 0] == logits[1, 0, 0, 0]
    other = network([x, _conditioning(2, seed=5, conditioning="global")]).numpy()
    assert np.abs(other - logits).min() > 0
    # The vector is a bias inside every gate: d logit / d h is nonzero at every pixel.
    with tf.GradientTape() as tape:
        tape.watch(h)
        out = network([x[:1], h])
    jacobian = tape.jacobian(out, h).numpy().reshape(64, 3)
    assert (np.abs(jacobian).sum(axis=1) > 0).all()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(conditioning="local"), "conditioning must be one of 'spatial', 'global'. Received: conditioning='local'"),
        (dict(num_layers=0), "Received: num_layers=0"),
        (dict(kernel_size=4), "kernel_size must be odd. Received: kernel_size=4"),
        (dict(num_filters=1.5), "Received: num_filters=1.5"),
    ],
)
def test_bad_network_arguments_name_what_was_received(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_pixelcnn((8, 8, 1), 3, **kwargs)


# --- The distribution: one parallel log_prob, a sequential sampler that agrees with it ----------


def test_log_prob_is_the_sum_of_the_pixels_bernoulli_log_probabilities():
    network = _network()
    h = _conditioning(3)
    x = _binary(3)
    logits = network([x, h]).numpy().astype("float64")
    x = x.numpy()
    by_hand = np.sum(x * -np.logaddexp(0, -logits) + (1 - x) * -np.logaddexp(0, logits), axis=(1, 2, 3))
    distribution = AutoregressiveBernoulli(network, h)
    assert distribution.batch_shape == [3] and distribution.event_shape == [8, 8, 1]
    np.testing.assert_allclose(distribution.log_prob(x), by_hand, rtol=1e-5)
    # Sample dimensions in front: [2, B] log-probabilities, each row its own images.
    stacked = distribution.log_prob(np.stack([x, x[::-1]]))
    assert stacked.shape == (2, 3)
    np.testing.assert_allclose(stacked[0], by_hand, rtol=1e-5)
    np.testing.assert_allclose(stacked[1], distribution.log_prob(x[::-1]), rtol=1e-6)


@pytest.mark.parametrize("channels", [1, 3])
def test_sampling_loop_equals_a_pixel_by_pixel_python_reference(channels):
    image_shape = (4, 4, channels)
    network = _network(image_shape, num_layers=2, num_filters=6)
    h = _conditioning(3, image_shape)
    distribution = AutoregressiveBernoulli(network, h)
    seed = tf.constant([7, 11], tf.int32)
    images = distribution.sample(seed=seed).numpy()
    # The documented rule: channel c of pixel (i, j) is 1 when u < sigmoid(logit), u drawn once
    # from the seed, in raster order and R, G, B within a pixel.
    noise = tf.random.stateless_uniform((3, *image_shape), seed=seed).numpy()
    reference = np.zeros((3, *image_shape), "float32")
    for i in range(4):
        for j in range(4):
            for c in range(channels):
                logits = network([tf.constant(reference), h]).numpy()[:, i, j, c]
                reference[:, i, j, c] = noise[:, i, j, c] < tf.sigmoid(logits).numpy()
    np.testing.assert_array_equal(images, reference)
    assert 0 < reference.mean() < 1


@pytest.mark.parametrize("channels", [1, 3])
def test_a_samples_log_prob_in_one_pass_equals_the_sum_accumulated_while_generating(channels):
    image_shape = (8, 8, channels)
    distribution = AutoregressiveBernoulli(_network(image_shape, num_filters=6), _conditioning(4, image_shape))
    images, generated = distribution.experimental_sample_and_log_prob(2, seed=(3, 4))
    assert images.shape == (2, 4, *image_shape) and generated.shape == (2, 4)
    assert set(np.unique(images)) == {0.0, 1.0}
    np.testing.assert_allclose(distribution.log_prob(images), generated, rtol=1e-5)


def test_a_seed_fixes_the_sample_and_the_mean_is_refused():
    distribution = AutoregressiveBernoulli(_network(), _conditioning(2))
    first = distribution.sample(3, seed=(1, 2)).numpy()
    np.testing.assert_array_equal(distribution.sample(3, seed=(1, 2)), first)
    assert not np.array_equal(distribution.sample(3, seed=(1, 3)), first)
    with pytest.raises(NotImplementedError, match="not tractable"):
        distribution.mean()


# --- The VAE with decoder="pixelcnn" ----------------------------------------------------------


@pytest.mark.parametrize("conditioning", ["spatial", "global"])
def test_a_pixelcnn_vae_trains_with_a_finite_decreasing_loss(binary_images, conditioning):
    vae = _tiny_vae(image_shape=(16, 16, 1), pixelcnn_conditioning=conditioning)
    vae.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = vae.fit(binary_images, epochs=6, batch_size=8, verbose=0).history
    assert np.isfinite(history["loss"]).all()
    assert history["loss"][-1] < 0.8 * history["loss"][0]
    # The reported reconstruction is the PixelCNN's log-likelihood.
    z = vae.posterior_distribution(binary_images).mean()
    assert isinstance(vae.likelihood_distribution(z), AutoregressiveBernoulli)


def test_importance_weights_decode_each_sample_against_its_own_image():
    # evaluation.likelihood decodes K samples per image as one [K * B] batch against the images
    # tiled sample-major: each row of the autoregressive p(x|z) must meet its own image.
    vae = _tiny_vae()
    x = _binary(3)
    posterior = vae.posterior_distribution(x)
    z = posterior.sample(2, seed=(0, 1))
    _, log_likelihood = log_importance_weights(x, z, posterior, vae.prior(), vae.likelihood_distribution)
    for k in range(2):
        np.testing.assert_allclose(log_likelihood[k], vae.likelihood_distribution(z[k]).log_prob(x), rtol=1e-5)


def test_vae_samples_are_binary_and_seeded():
    vae = _tiny_vae()
    images = vae.sample(3, seed=3).numpy()
    assert images.shape == (3, 8, 8, 1) and set(np.unique(images)) == {0.0, 1.0}
    np.testing.assert_array_equal(vae.sample(3, seed=3), images)
    assert not np.array_equal(vae.sample(3, seed=4), images)
    # Unseeded draws come from the model's own stream: a twin built with the same seed repeats them.
    np.testing.assert_array_equal(_tiny_vae().sample(3), _tiny_vae().sample(3))


@pytest.mark.parametrize("conditioning, channels", [("spatial", 1), ("global", 1), ("global", 3)])
def test_keras_file_round_trip_gives_the_same_log_prob_and_samples(tmp_path, conditioning, channels):
    image_shape = (8, 8, channels)
    kernel_size = 5 if channels == 3 else 3
    vae = _tiny_vae(image_shape=image_shape, pixelcnn_layers=3, pixelcnn_filters=6, pixelcnn_conditioning=conditioning,
                    pixelcnn_kernel_size=kernel_size)
    x = _binary(8, image_shape)
    vae.compile(optimizer="adam")
    vae.fit(x, epochs=1, batch_size=8, verbose=0)
    vae.save(tmp_path / "vae.keras")
    restored = keras.saving.load_model(tmp_path / "vae.keras")
    assert restored.get_config() == vae.get_config()
    assert (restored.decoder_type, restored.pixelcnn_layers, restored.pixelcnn_filters) == ("pixelcnn", 3, 6)
    assert (restored.pixelcnn_conditioning, restored.pixelcnn_kernel_size) == (conditioning, kernel_size)
    z = np.random.default_rng(0).standard_normal((8, 2)).astype("float32")
    np.testing.assert_array_equal(restored.likelihood_distribution(z).log_prob(x), vae.likelihood_distribution(z).log_prob(x))
    np.testing.assert_array_equal(restored.decode(z, seed=5), vae.decode(z, seed=5))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(decoder="made"), "decoder must be one of 'conv', 'pixelcnn'. Received: decoder='made'"),
        (dict(likelihood="gaussian"), "needs likelihood='bernoulli'. Received: likelihood='gaussian'"),
        (dict(pixelcnn_layers=0), "Received: pixelcnn_layers=0"),
        (dict(pixelcnn_filters=True), "Received: pixelcnn_filters=True"),
        (dict(image_shape=(8, 8, 3)), r"pixelcnn_filters must be a multiple of the image.s 3 channels.*Received: pixelcnn_filters=8, image_shape=\(8, 8, 3\)"),
        (dict(pixelcnn_conditioning="local"), "Received: pixelcnn_conditioning='local'"),
        (dict(pixelcnn_kernel_size=4), "pixelcnn_kernel_size must be odd. Received: pixelcnn_kernel_size=4"),
    ],
)
def test_bad_vae_arguments_name_what_was_received(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _tiny_vae(**kwargs)


def test_saved_model_serves_seeded_binary_samples_and_the_encoder(tmp_path):
    from kerasgen.export import export_vae

    vae = _tiny_vae()
    assert export_vae(vae, tmp_path / "saved") == ["decode", "sample", "encode", "reconstruct"]
    served = tf.saved_model.load(str(tmp_path / "saved")).signatures
    first = served["sample"](n=tf.constant(3), seed=tf.constant(5))
    images = first["images"].numpy()
    assert images.shape == (3, 8, 8, 1) and set(np.unique(images)) == {0.0, 1.0}
    np.testing.assert_array_equal(served["sample"](n=tf.constant(3), seed=tf.constant(5))["images"], images)
    # The served sampler is the model's: the same z and pixel seed give the same images.
    np.testing.assert_array_equal(vae.decode(first["z"], seed=tf.constant([5, 1])), images)
    x = _binary(2)
    np.testing.assert_allclose(served["encode"](images=x)["loc"], vae.encode(x)[0], rtol=1e-5)
    assert served["decode"](z=first["z"])["images"].shape == (3, 8, 8, 1)


def test_train_vae_flags_choose_the_pixelcnn_decoder():
    from kerasgen.cli import build_parser
    from kerasgen.config import TrainVAEConfig, from_arguments

    def parse(*flags):
        return from_arguments(TrainVAEConfig, build_parser().parse_args(["train-vae", *flags]))

    config = parse("--decoder", "pixelcnn", "--pixelcnn-layers", "6", "--pixelcnn-filters", "16")
    assert (config.decoder, config.pixelcnn_layers, config.pixelcnn_filters) == ("pixelcnn", 6, 16)
    assert parse().decoder == "conv"
    with pytest.raises(ValueError, match="needs --likelihood bernoulli. Received: --decoder pixelcnn, --likelihood gaussian"):
        parse("--decoder", "pixelcnn", "--likelihood", "gaussian")
    with pytest.raises(ValueError, match="--pixelcnn-layers must be a positive int. Received: --pixelcnn-layers 0"):
        parse("--pixelcnn-layers", "0")
    assert parse("--decoder", "pixelcnn", "--pixelcnn-conditioning", "global").pixelcnn_conditioning == "global"
    assert parse("--decoder", "pixelcnn", "--pixelcnn-kernel-size", "5").pixelcnn_kernel_size == 5
    assert parse().pixelcnn_kernel_size == 3
    with pytest.raises(ValueError, match="--pixelcnn-kernel-size must be odd and at least 3. Received: --pixelcnn-kernel-size 4"):
        parse("--decoder", "pixelcnn", "--pixelcnn-kernel-size", "4")
    assert parse().pixelcnn_conditioning == "spatial"
    with pytest.raises(ValueError, match="--pixelcnn-conditioning .*--decoder pixelcnn"):
        parse("--pixelcnn-conditioning", "global")


def test_models_warm_started_from_a_vae_refuse_a_pixelcnn_decoder():
    from kerasgen import GAN, VAEGAN

    vae = _tiny_vae()
    for model in (GAN, VAEGAN):
        with pytest.raises(ValueError, match="decoder='conv'. Received: a VAE with decoder='pixelcnn'"):
            model.from_vae(vae)


def test_evaluate_decodes_fewer_importance_samples_at_once_for_a_pixelcnn():
    from kerasgen.config import EvaluateConfig
    from kerasgen.evaluation.report import PIXELCNN_IMAGES_PER_PASS, chunk_size

    conv, pixelcnn = _tiny_vae(decoder="conv"), _tiny_vae()
    config = EvaluateConfig(model="run", batch_size=50)
    assert chunk_size(config, conv) == 100
    assert chunk_size(config, pixelcnn) * config.batch_size == PIXELCNN_IMAGES_PER_PASS
    assert chunk_size(EvaluateConfig(model="run", batch_size=5000), pixelcnn) == 1
    # A chunk size the user asks for is used as it is.
    assert chunk_size(EvaluateConfig(model="run", chunk_size=7), pixelcnn) == 7
    with pytest.raises(ValueError, match="--chunk-size"):
        EvaluateConfig(model="run", chunk_size=0)


def test_sample_grids_of_a_pixelcnn_decoder_draw_the_same_pixel_noise_every_epoch(tmp_path):
    """A PixelCNN decodes a sample of p(x|z): the grids fix its pixel noise with their seed, so two
    epochs' grids of the same z differ only by what training changed (here nothing)."""
    from kerasgen.callbacks import SampleGrid

    vae = _tiny_vae()
    images = _binary(6, seed=3).numpy()

    def grids(seed, epochs):
        callback = SampleGrid(tmp_path / str(seed), images=images, num_samples=16, seed=seed)
        callback.set_model(vae)
        callback.on_train_begin()  # writes epoch 0
        for epoch in epochs:
            callback.write(epoch)
        return [
            [tf.io.decode_png(tf.io.read_file(str(tmp_path / str(seed) / kind / f"epoch_{epoch:03d}.png"))).numpy()
             for epoch in (0, *epochs)]
            for kind in ("samples", "reconstructions")
        ]

    samples, reconstructions = grids(1, (1, 2))
    for grid in (*samples[1:], *reconstructions[1:]):
        assert grid.shape in (samples[0].shape, reconstructions[0].shape)
    for later in samples[1:]:
        np.testing.assert_array_equal(later, samples[0])
    for later in reconstructions[1:]:
        np.testing.assert_array_equal(later, reconstructions[0])
    # The grids are draws of p(x|z), not constants: another seed's pixel noise (and z) gives others.
    other_samples, other_reconstructions = grids(2, ())
    assert not np.array_equal(other_samples[0], samples[0])
    assert not np.array_equal(other_reconstructions[0], reconstructions[0])


# --- A colour PixelCNN VAE through the CLI: train, resume, evaluate, serve, sample -------------


@pytest.mark.slow
def test_a_colour_global_pixelcnn_vae_trains_resumes_evaluates_and_serves(tmp_path, capsys):
    from kerasgen.cli import main

    # 8 colours, one per image quadrant pattern: every channel is 0 or 1, the Bernoulli's data.
    rng = np.random.default_rng(0)
    colours = rng.integers(0, 2, size=(64, 2, 3))
    x = np.zeros((64, 8, 8, 3), np.uint8)
    x[:, :4] = 255 * colours[:, :1, None, :]
    x[:, 4:] = 255 * colours[:, 1:, None, :]
    np.savez(tmp_path / "colour.npz", x_train=x)
    run = tmp_path / "run"
    train = ["train-vae", "--dataset", str(tmp_path / "colour.npz"), "--likelihood", "bernoulli", "--binarize", "none",
             "--decoder", "pixelcnn", "--pixelcnn-conditioning", "global", "--pixelcnn-layers", "2",
             "--pixelcnn-filters", "6", "--latent-dim", "2", "--num-filters", "4", "--hidden-dim", "8",
             "--validation-size", "16", "--batch-size", "16", "--latent-images", "16", "--grid-every", "0",
             "--out", str(run)]
    assert main([*train, "--epochs", "1"]) == 0
    assert main([*train, "--epochs", "2", "--resume"]) == 0
    history = (run / "history.csv").read_text().splitlines()
    assert len(history) == 3 and "active_units" in history[0] and "mutual_information" in history[0]
    assert not (run / "samples").exists()  # --grid-every 0: no grids drawn pixel by pixel
    vae = keras.saving.load_model(run / "vae.keras")
    assert (vae.image_shape, vae.pixelcnn_conditioning) == ((8, 8, 3), "global")
    samples = vae.sample(4, seed=1).numpy()
    assert samples.shape == (4, 8, 8, 3) and set(np.unique(samples)) <= {0.0, 1.0}
    capsys.readouterr()
    assert main(["evaluate", "--model", str(run), "--k", "4", "--num-samples", "16", "--batch-size", "16"]) == 0
    metrics = json.loads((run / "report" / "metrics.json").read_text())
    assert np.isfinite(metrics["importance_weighted"]["log_likelihood"])
    assert metrics["importance_weighted"]["log_likelihood"] >= metrics["elbo"]["elbo"] - 1e-3
    # train-vae exported the SavedModel: it serves the model's samples.
    served = tf.saved_model.load(str(run / "saved_model")).signatures["sample"](n=tf.constant(2), seed=tf.constant(3))
    np.testing.assert_array_equal(served["images"], vae.decode(served["z"], seed=tf.constant([3, 1])))
