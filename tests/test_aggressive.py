"""Aggressive inference-network training (He et al. 2019): the inner loop, the phase, its end, its artifacts."""

import csv

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasgen.callbacks import AggressivePhase
from kerasgen.config import TrainVAEConfig, from_arguments
from kerasgen.models import AggressiveVAE
from kerasgen.models.aggressive_vae import MAX_ENCODER_STEPS, WINDOW, window_rule
from kerasgen.runs.plumbing import Backup


def _images(n=16, size=8, seed=0):
    return (np.random.default_rng(seed).random((n, size, size, 1)) > 0.5).astype("float32")


def _tiny(**kwargs):
    keras.utils.set_random_seed(0)
    return AggressiveVAE(image_shape=(8, 8, 1), latent_dim=2, num_filters=(4,), hidden_dim=8, seed=0, **kwargs)


def _dataset(images, batch_size=8):
    return tf.data.Dataset.from_tensor_slices((images, images)).shuffle(len(images), seed=0).batch(batch_size)


def _values(variables):
    return [np.array(v) for v in variables]


def _changed(before, variables):
    return any(not np.array_equal(b, np.array(v)) for b, v in zip(before, variables))


def _decoder_variables(vae):
    return vae._decoder_variables()


def _steps_of(losses, max_steps=MAX_ENCODER_STEPS):
    """Inner steps the window rule takes on a forced loss sequence."""
    state = (tf.constant(0), tf.constant(float("inf")), tf.constant(0.0))
    for loss in losses:
        *state, stop = window_rule(*state, tf.constant(loss, tf.float32), max_steps)
        if bool(stop):
            return int(state[0])
    raise AssertionError("the rule never stopped")


# --- The inner loop's rule ---------------------------------------------------------------------


def _their_steps(losses):
    """Inner steps of He et al.'s loop (image.py of jxhe/vae-lagging-encoder), transcribed, on equal batches."""
    sub_iter, pre_loss, cur_loss, losses = 1, 1e4, 0.0, iter(losses)
    while sub_iter < 100:
        cur_loss += next(losses)
        if sub_iter % 10 == 0:
            cur_loss = cur_loss / 10
            if pre_loss - cur_loss < 0:
                break
            pre_loss, cur_loss = cur_loss, 0.0
        sub_iter += 1
    return min(sub_iter, 99)


def test_window_rule_stops_when_a_window_mean_rises():
    # Flat: an equal window mean is no rise, so it goes on to the cap, as He et al.'s loop does.
    assert _steps_of([5.0] * 200) == MAX_ENCODER_STEPS == 99
    assert _steps_of([*[5.0] * 10, *[5.5] * 100]) == 2 * WINDOW
    # Falling for 2 windows, then rising: stops at the end of the third.
    assert _steps_of([*np.linspace(10, 1, 20), *[5.0] * 100]) == 3 * WINDOW
    # Ever falling: capped at 99 steps (their `while sub_iter < 100`, counting from 1).
    assert _steps_of(np.linspace(100, 1, 300)) == MAX_ENCODER_STEPS
    # Only window means count: a spike inside a window whose mean still falls does not stop it.
    assert _steps_of([*[5.0] * 10, 40.0, *[0.0] * 9, *[9.0] * 100]) == 3 * WINDOW
    # A lower cap stops where it falls, inside a window too; at 2 windows it fixes the count.
    assert _steps_of(np.linspace(100, 1, 300), max_steps=25) == 25
    assert _steps_of([5.0] * 200, max_steps=2 * WINDOW) == _steps_of(np.linspace(100, 1, 300), max_steps=2 * WINDOW) == 20


def test_window_rule_takes_the_steps_he_et_al_s_loop_takes():
    # Integer losses make equal window means (ties) common; all stay under their first bound, 1e4.
    rng = np.random.default_rng(0)
    for trial in range(200):
        losses = [float(v) for v in rng.integers(0, 3 + trial % 5, 120)]
        assert _steps_of(losses) == _their_steps(losses), losses


@pytest.mark.parametrize("max_encoder_steps, expected", [(99, 5 * WINDOW), (32, 32)])
def test_inner_loop_in_the_model_follows_the_rule_on_a_forced_loss_sequence(max_encoder_steps, expected):
    vae = _tiny(max_encoder_steps=max_encoder_steps)
    vae.compile(optimizer="adam")
    images = _images()
    vae.set_encoder_data(_dataset(images))
    forced = tf.constant([*np.linspace(10, 1, 40), *[5.0] * 200], tf.float32)  # falls for 4 windows
    calls = tf.Variable(0)

    def forced_step(x, sample_weight):
        loss = tf.gather(forced, calls)
        calls.assign_add(1)
        return loss

    vae._encoder_step = forced_step
    logs = vae.fit(images, epochs=1, batch_size=16, verbose=0).history
    assert logs["encoder_steps"] == [expected] and int(calls.numpy()) == expected
    assert logs["aggressive"] == [1.0]


def test_real_inner_steps_are_whole_windows_and_only_move_the_encoder():
    vae = _tiny()
    vae.compile(optimizer="adam")
    images = _images()
    vae.set_encoder_data(_dataset(images))
    logs = vae.fit(images, epochs=1, batch_size=8, verbose=0).history
    steps = logs["encoder_steps"][0] * 2  # two decoder steps
    # Each step's count is whole windows, at least 2, or the cap; the encoder optimizer took
    # exactly them (the decoder steps did not move the encoder) and the decoder optimizer one per batch.
    assert int(vae.encoder_optimizer.iterations) == steps
    assert int(vae.optimizer.iterations) == 2
    counts = [*range(2 * WINDOW, MAX_ENCODER_STEPS + 1, WINDOW), MAX_ENCODER_STEPS]
    assert steps in {a + b for a in counts for b in counts}


# --- Which part each step moves ----------------------------------------------------------------


@pytest.mark.parametrize("decoder", ["conv", "pixelcnn"])
def test_encoder_step_leaves_the_decoder_and_decoder_step_leaves_the_encoder(decoder):
    vae = _tiny(decoder=decoder, pixelcnn_layers=1, pixelcnn_filters=4, free_bits=0.1, kl_warmup_steps=3)
    vae.compile(optimizer="adam")
    x = tf.constant(_images(8))
    encoder, decoder_variables = vae.encoder.trainable_variables, _decoder_variables(vae)
    if decoder == "pixelcnn":
        assert {id(v) for v in vae.pixelcnn.trainable_variables} <= {id(v) for v in decoder_variables}
    before_encoder, before_decoder = _values(encoder), _values(decoder_variables)
    vae._encoder_step(x, None)
    assert _changed(before_encoder, encoder) and not _changed(before_decoder, decoder_variables)

    # The decoder's step of an aggressive training step, its inner loop taken out.
    vae.set_encoder_data(_dataset(_images()))
    vae._train_encoder = lambda: tf.constant(0)
    before_encoder, before_decoder = _values(encoder), _values(decoder_variables)
    vae.fit(x, epochs=1, batch_size=8, verbose=0)
    assert _changed(before_decoder, decoder_variables) and not _changed(before_encoder, encoder)


def test_out_of_the_aggressive_phase_both_parts_move_in_one_step():
    vae = _tiny(aggressive=False)
    vae.compile(optimizer="adam")
    encoder, decoder_variables = vae.encoder.trainable_variables, _decoder_variables(vae)
    before_encoder, before_decoder = _values(encoder), _values(decoder_variables)
    # No encoder data is needed once the phase is over.
    logs = vae.fit(_images(8), epochs=1, batch_size=8, verbose=0).history
    assert _changed(before_encoder, encoder) and _changed(before_decoder, decoder_variables)
    assert logs["aggressive"] == [0.0] and logs["encoder_steps"] == [0.0]
    assert int(vae.optimizer.iterations) == 1 and int(vae.encoder_optimizer.iterations) == 1


def test_encoder_schedule_follows_the_decoder_steps():
    vae = _tiny()
    vae.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(1e-2, 4, alpha=0.05)))
    images = _images()
    vae.set_encoder_data(_dataset(images))
    vae.fit(images, epochs=1, batch_size=8, verbose=0)
    assert int(vae.encoder_optimizer.iterations) > 2 * int(vae.optimizer.iterations)
    assert float(vae.encoder_optimizer.learning_rate) == pytest.approx(float(vae.optimizer.learning_rate))
    assert float(vae.optimizer.learning_rate) > 0.05 * 1e-2 * 1.01  # half-way down, not at the floor


def test_each_optimizer_gets_its_own_loss_scale_under_mixed_float16():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        vae = _tiny()
        vae.compile(optimizer="adam")
    finally:
        keras.config.set_dtype_policy(previous)
    scaler = keras.optimizers.LossScaleOptimizer
    assert isinstance(vae.optimizer, scaler) and isinstance(vae.encoder_optimizer, scaler)
    assert vae.optimizer.inner_optimizer is not vae.encoder_optimizer.inner_optimizer


# --- The end of the phase ----------------------------------------------------------------------


def test_phase_stays_on_while_information_rises_and_ends_after_patience_epochs_without_a_best():
    vae = _tiny()
    callback = AggressivePhase(patience=3)
    callback.set_model(vae)
    for epoch, information in enumerate([0.1, 0.2, 0.5, 0.9]):
        callback.on_epoch_end(epoch, {"mutual_information": information})
        assert int(vae.aggressive_phase) == 1
    assert float(vae.best_mutual_information) == pytest.approx(0.9)
    # Two epochs below the best, then a new best resets the count.
    for epoch, information in enumerate([0.8, 0.9, 1.0], start=4):
        callback.on_epoch_end(epoch, {"mutual_information": information})
    assert int(vae.aggressive_phase) == 1 and int(vae.epochs_without_gain) == 0
    for epoch, information in enumerate([0.7, 0.95], start=7):
        callback.on_epoch_end(epoch, {"mutual_information": information})
        assert int(vae.aggressive_phase) == 1
    callback.on_epoch_end(9, {"mutual_information": 0.99})  # the third without a new best
    assert int(vae.aggressive_phase) == 0
    # For good: a later rise does not bring it back.
    callback.on_epoch_end(10, {"mutual_information": 5.0})
    assert int(vae.aggressive_phase) == 0


def test_phase_callback_measures_information_itself_or_says_what_it_needs():
    vae = _tiny()
    callback = AggressivePhase(patience=1)
    callback.set_model(vae)
    with pytest.raises(ValueError, match="put a LatentDiagnostics callback before it, or give it images"):
        callback.on_epoch_end(0, {"loss": 1.0})
    callback = AggressivePhase(patience=1, images=_images(8))
    callback.set_model(vae)
    callback.on_epoch_end(0, {"loss": 1.0})
    assert np.isfinite(float(vae.best_mutual_information)) and int(vae.aggressive_phase) == 1
    with pytest.raises(ValueError, match="patience must be a positive int. Received: patience=0"):
        AggressivePhase(patience=0)
    from kerasgen.models import VAE

    callback = AggressivePhase()
    callback.set_model(VAE(image_shape=(8, 8, 1), latent_dim=2, num_filters=(4,), hidden_dim=8))
    with pytest.raises(ValueError, match="of an AggressiveVAE .* Received: a VAE"):
        callback.on_train_begin()


# --- Saved and resumed -------------------------------------------------------------------------


def test_phase_survives_a_keras_round_trip_and_a_checkpoint(tmp_path):
    vae = _tiny(max_encoder_steps=30)
    vae.compile(optimizer="adam")
    vae.set_encoder_data(_dataset(_images()))
    vae.fit(_images(8), epochs=1, batch_size=8, verbose=0)
    vae.aggressive_phase.assign(0)
    vae.best_mutual_information.assign(0.75)
    vae.epochs_without_gain.assign(2)
    path = str(tmp_path / "vae.keras")
    vae.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, AggressiveVAE) and loaded.aggressive is True and loaded.max_encoder_steps == 30
    assert (int(loaded.aggressive_phase), float(loaded.best_mutual_information), int(loaded.epochs_without_gain)) == (0, 0.75, 2)
    assert int(loaded.encoder_optimizer.iterations) == int(vae.encoder_optimizer.iterations) > 0
    x = _images(4, seed=3)
    np.testing.assert_array_equal(loaded.reconstruct(x), vae.reconstruct(x))

    backup = Backup(str(tmp_path / "checkpoint"))
    backup.set_model(vae)
    backup.on_epoch_end(0, {"loss": 1.0})
    resumed = _tiny()
    resumed.compile(optimizer="adam")
    assert Backup(str(tmp_path / "checkpoint")).restore(resumed) == 1
    assert (int(resumed.aggressive_phase), int(resumed.epochs_without_gain)) == (0, 2)
    assert int(resumed.encoder_optimizer.iterations) == int(vae.encoder_optimizer.iterations)


@pytest.fixture
def binary_npz(tmp_path):
    """64 binary 8x8 images with labels, as a Keras-style .npz."""
    path = tmp_path / "tiny.npz"
    np.savez(path, x_train=(_images(64)[..., 0] * 255).astype(np.uint8), y_train=np.arange(64) % 4)
    return str(path)


def test_train_vae_aggressive_logs_its_phase_and_resumes_in_it(tmp_path, binary_npz):
    from kerasgen.cli import main

    out = tmp_path / "run"
    tiny = ["--num-filters", "4", "--hidden-dim", "8", "--latent-dim", "2", "--batch-size", "16", "--validation-size", "16"]
    # A cap of two windows, the rule's least: exactly 20 encoder steps per batch while aggressive.
    args = ["train-vae", "--dataset", binary_npz, "--aggressive", "--aggressive-patience", "1", "--aggressive-max-steps",
            "20", "--latent-images", "16"]
    assert main([*args, "--epochs", "2", "--out", str(out), *tiny]) == 0
    final = keras.saving.load_model(out / "vae.keras")
    assert isinstance(final, AggressiveVAE) and final.max_encoder_steps == 20
    phase = int(final.aggressive_phase)
    assert main([*args, "--epochs", "3", "--resume", "--out", str(out), *tiny]) == 0
    with open(out / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    assert all(r["aggressive"] in ("0.0", "1.0") for r in rows) and rows[0]["aggressive"] == "1.0"
    # While aggressive, the capped 20 inner steps per batch; after, none.
    for row in rows:
        steps = float(row["encoder_steps"])
        assert steps == (2 * WINDOW if row["aggressive"] == "1.0" else 0.0)
    # The resumed run's first epoch trained in the phase the checkpoint held.
    assert rows[2]["aggressive"] == ("1.0" if phase else "0.0")


# --- Refused -----------------------------------------------------------------------------------


def _parse(*flags):
    from kerasgen.cli import build_parser

    return from_arguments(TrainVAEConfig, build_parser().parse_args(["train-vae", *flags]))


def test_flags_and_bad_combinations_are_refused_with_what_was_received():
    config = _parse("--aggressive", "--aggressive-patience", "3", "--aggressive-max-steps", "20")
    assert (config.aggressive, config.aggressive_patience, config.aggressive_max_steps) == (True, 3, 20)
    assert (_parse().aggressive, _parse().aggressive_patience, _parse().aggressive_max_steps) == (False, 5, 99)
    with pytest.raises(ValueError, match="--aggressive-max-steps must be a positive int. Received: --aggressive-max-steps 0"):
        _parse("--aggressive", "--aggressive-max-steps", "0")
    with pytest.raises(ValueError, match="which --latent-images measures.*Received: --aggressive, --latent-images 0"):
        _parse("--aggressive", "--latent-images", "0")
    with pytest.raises(ValueError, match="cannot be XLA-compiled.*Received: --aggressive, --jit-compile on"):
        _parse("--aggressive", "--jit-compile", "on")
    with pytest.raises(ValueError, match="--aggressive-patience requires --aggressive.*Received: --aggressive-patience 3 without --aggressive"):
        _parse("--aggressive-patience", "3")
    with pytest.raises(ValueError, match="--aggressive-patience must be a positive int"):
        _parse("--aggressive", "--aggressive-patience", "0")
    with pytest.raises(ValueError, match="aggressive must be True or False. Received: aggressive=1"):
        _tiny(aggressive=1)
    vae = _tiny()
    with pytest.raises(ValueError, match="Received: jit_compile=True"):
        vae.compile(optimizer="adam", jit_compile=True)
    vae.compile(optimizer="adam")
    with pytest.raises(ValueError, match=r"call set_encoder_data\(training_dataset\) before fit"):
        vae.fit(_images(8), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="takes a tf.data.Dataset. Received: ndarray"):
        vae.set_encoder_data(_images(8))


def test_several_replicas_are_refused_naming_the_strategy():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        vae = _tiny()
        with pytest.raises(ValueError, match="Received: MirroredStrategy with 2 replicas"):
            vae.compile(optimizer="adam")
