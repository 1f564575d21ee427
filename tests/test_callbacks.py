import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasgen import VAE
from kerasgen.artifacts import atomic_path
from kerasgen.callbacks import SampleGrid
from kerasgen.images import image_grid, interleave
from kerasgen.runs.plumbing import Backup, HistoryCSV


def _small_vae():
    vae = VAE(image_shape=(16, 16, 1), latent_dim=2, num_filters=(8, 16), hidden_dim=32, seed=0)
    vae.compile(optimizer="adam")
    return vae


def _read_png(path):
    return tf.io.decode_png(tf.io.read_file(str(path))).numpy()


def test_image_grid_tiles_in_row_major_order():
    images = np.stack([np.full((2, 3, 1), v, dtype=np.float32) for v in (0.0, 0.25, 0.5, 1.0, 1.0)])
    grid = image_grid(images, columns=2, padding=1)
    assert grid.shape == (3 * 3 + 1, 2 * 4 + 1, 1) and grid.dtype == np.uint8
    assert grid[1, 1, 0] == 0 and grid[1, 5, 0] == 64 and grid[4, 1, 0] == 128 and grid[7, 1, 0] == 255
    assert grid[7, 5, 0] == 0  # the unused last cell stays blank
    np.testing.assert_array_equal(interleave(images[:2], images[2:4])[:, 0, 0, 0], [0.0, 0.5, 0.25, 1.0])


def test_sample_grid_uses_fixed_latents_and_writes_tensorboard_images(tmp_path, binary_images):
    vae = _small_vae()
    grid = SampleGrid(tmp_path / "run", images=binary_images[:4], num_samples=9, every=2, seed=1, logdir=tmp_path / "logs")
    vae.fit(binary_images, epochs=3, batch_size=8, verbose=0, callbacks=[grid])
    samples = sorted(os.listdir(tmp_path / "run" / "samples"))
    assert samples == ["epoch_000.png", "epoch_002.png", "epoch_003.png"]
    assert sorted(os.listdir(tmp_path / "run" / "reconstructions")) == samples
    # The same latents decode to the same grid when the weights do not change.
    before = _read_png(tmp_path / "run" / "samples" / "epoch_003.png")
    grid.write(3)
    np.testing.assert_array_equal(_read_png(tmp_path / "run" / "samples" / "epoch_003.png"), before)
    assert before.shape == (3 * 18 + 2, 3 * 18 + 2, 1)
    # 4 inputs beside 4 reconstructions: 2 rows of 4.
    assert _read_png(tmp_path / "run" / "reconstructions" / "epoch_003.png").shape == (2 * 18 + 2, 4 * 18 + 2, 1)
    assert os.listdir(tmp_path / "logs" / "images")


def test_backup_restores_weights_optimizer_seed_state_and_epoch(tmp_path, binary_images):
    vae = _small_vae()
    vae.fit(binary_images, epochs=2, batch_size=8, verbose=0, callbacks=[Backup(str(tmp_path))])
    restored = _small_vae()
    restored.compile(optimizer="adam")
    assert Backup(str(tmp_path)).restore(restored) == 2
    assert int(restored.optimizer.iterations) == 4
    np.testing.assert_array_equal(restored.reconstruct(binary_images), vae.reconstruct(binary_images))
    # The noise continues where it stopped (BackupAndRestore alone would restart it).
    np.testing.assert_array_equal(restored.seed_generator.state.numpy(), vae.seed_generator.state.numpy())
    assert restored._initial_epoch == 2
    # One weights file, no temporaries left.
    assert sorted(os.listdir(tmp_path)) == ["epoch_0002.weights.h5", "state.json"]
    assert Backup(str(tmp_path / "empty")).restore(_small_vae()) == 0


def test_backup_skips_a_diverged_epoch(tmp_path, binary_images):
    vae = _small_vae()
    vae.fit(binary_images[:8], epochs=1, batch_size=8, verbose=0)
    backup = Backup(str(tmp_path))
    backup.set_model(vae)
    backup.on_epoch_end(0, {"loss": 1.0})
    backup.on_epoch_end(1, {"loss": float("nan")})
    assert Backup.read_state(str(tmp_path))["epoch"] == 1


def test_a_kill_while_the_backup_writes_keeps_the_previous_epoch(tmp_path, binary_images, monkeypatch):
    vae = _small_vae()
    vae.fit(binary_images[:8], epochs=1, batch_size=8, verbose=0)
    backup = Backup(str(tmp_path))
    backup.set_model(vae)
    backup.on_epoch_end(0, {"loss": 1.0})

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # as a kill in the middle of writing the weights

    monkeypatch.setattr(vae, "save_weights", killed)
    with pytest.raises(KeyboardInterrupt):
        backup.on_epoch_end(1, {"loss": 0.5})
    assert Backup.read_state(str(tmp_path))["epoch"] == 1
    assert sorted(os.listdir(tmp_path)) == ["epoch_0001.weights.h5", "state.json"]


def test_atomic_path_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "model.keras"
    target.write_text("good")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            with open(tmp, "w") as f:
                f.write("half")
            raise RuntimeError("killed mid-write")
    assert target.read_text() == "good"
    assert os.listdir(tmp_path) == ["model.keras"]


def test_atomic_path_replaces_a_folder(tmp_path):
    target = tmp_path / "saved_model"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with atomic_path(target) as tmp:
        os.makedirs(tmp)
        with open(os.path.join(tmp, "new.txt"), "w") as f:
            f.write("new")
    assert os.listdir(target) == ["new.txt"]
    assert os.listdir(tmp_path) == ["saved_model"]


def test_sample_grid_draws_a_gan_with_generate(tmp_path):
    from kerasgen import GAN

    vae = _small_vae()
    gan = GAN.from_vae(vae)
    grid = SampleGrid(tmp_path, num_samples=9, seed=3)
    grid.set_model(gan)
    grid.on_train_begin()
    z = np.random.default_rng(3).standard_normal((9, 2)).astype(np.float32)
    # The warm-started generator draws the VAE's own grid; a GAN has nothing to reconstruct.
    np.testing.assert_array_equal(_read_png(tmp_path / "samples" / "epoch_000.png"), image_grid(np.asarray(vae.decode(z))))
    assert not (tmp_path / "reconstructions").exists()


class _Sampler(keras.Model):
    """A stand-in generative model whose `sample` draws from a fixed pool of images."""

    def __init__(self, pool):
        super().__init__()
        self.pool = pool

    def sample(self, n, seed=None):
        rows = np.random.default_rng(seed).integers(0, len(self.pool), n)
        return self.pool[rows]


def _toy_classifier():
    """A fixed random conv net (seeded): features `[B, 8]`, logits `[B, 3]`."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1))
    features = keras.layers.Dense(8, activation="tanh")(keras.layers.Flatten()(keras.layers.Conv2D(4, 3)(inputs)))
    model = keras.Model(inputs, keras.layers.Dense(3)(features))
    model.features = keras.Model(inputs, features)
    return model


def _run_epochs(callbacks, model, epochs, initial_epoch=0):
    """Calls the callbacks as `fit` would, in order, for epochs `initial_epoch` to `epochs` − 1."""
    callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
    for callback in callbacks:
        callback.set_model(model)
        callback.set_params({"epochs": epochs})
        callback.on_train_begin()
    logs_per_epoch = []
    for epoch in range(initial_epoch, epochs):
        logs = {"g_loss": 1.0}
        for callback in callbacks:
            callback.on_epoch_begin(epoch)
        for callback in callbacks:
            callback.on_epoch_end(epoch, logs)
        logs_per_epoch.append(logs)
    for callback in callbacks:
        callback.on_train_end()
    return logs_per_epoch


def test_history_csv_keeps_every_column_under_its_name_across_a_resume(tmp_path):
    from kerasgen.plots import read_history
    from kerasgen.runs.harness import truncate_history

    path = str(tmp_path / "history.csv")

    class Logs(keras.callbacks.Callback):
        def __init__(self, change):
            super().__init__()
            self.change = change

        def on_epoch_end(self, epoch, logs=None):
            self.change(epoch, logs)

    # A metric that first appears at epoch 1 (Keras's CSVLogger would refuse or drop it).
    _run_epochs([Logs(lambda e, logs: logs.update({"fd": 10.0 + e} if e else {})), HistoryCSV(path)], None, epochs=3)
    assert read_history(path)["fd"][1:] == [11.0, 12.0] and np.isnan(read_history(path)["fd"][0])
    # Killed after epoch 2's row, checkpoint after epoch 1; resumed with a column more and one fewer.
    truncate_history(path, 2)
    _run_epochs([Logs(lambda e, logs: logs.update(active_units=3.0) or logs.pop("g_loss")), HistoryCSV(path, append=True)], None,
                epochs=4, initial_epoch=2)
    with open(path) as f:
        header = f.readline().strip().split(",")
    assert header == ["epoch", "active_units", "fd", "g_loss"]
    history = read_history(path)
    assert history["epoch"] == [0.0, 1.0, 2.0, 3.0] and history["fd"][1] == 11.0
    assert np.isnan(history["active_units"][:2]).all() and history["active_units"][2:] == [3.0, 3.0]
    assert history["g_loss"][:2] == [1.0, 1.0] and np.isnan(history["fd"][2:]).all()


def test_sample_quality_measures_on_schedule_and_tells_real_from_noise():
    from kerasgen.callbacks import SampleQuality

    rng = np.random.default_rng(0)
    # "Real" images: bright bars; the noise model draws uniform noise.
    real = np.zeros((200, 8, 8, 1), np.float32)
    real[np.arange(200), :, rng.integers(0, 8, 200)] = 1.0
    classifier = _toy_classifier()
    good = SampleQuality(classifier, real[:100], every=2, num_samples=100)
    logs = _run_epochs(good, _Sampler(real[100:]), epochs=5)
    # Before training, after the first epoch (CSVLogger's columns), every 2nd and the last.
    assert [r["epoch"] for r in good.records] == [0, 1, 2, 4, 5]
    assert [("fd" in epoch_logs) for epoch_logs in logs] == [True, True, False, True, True]
    assert logs[1]["fd"] == good.records[2]["fd"] and logs[1]["kid"] == good.records[2]["kid"]
    assert all(abs(sum(r["class_fractions"]) - 1.0) < 1e-9 for r in good.records)
    assert good.records[0]["seconds"] == 0.0 and good.records[-1]["seconds"] >= 0.0

    bad = SampleQuality(classifier, real[:100], every=5, num_samples=100)
    _run_epochs(bad, _Sampler(rng.uniform(size=(100, 8, 8, 1)).astype(np.float32)), epochs=5)
    assert bad.records[-1]["fd"] > 10 * good.records[-1]["fd"]
    assert bad.records[-1]["kid"] > good.records[-1]["kid"]


def test_sample_quality_columns_reach_the_csv_and_its_records_survive_a_resume(tmp_path):
    from kerasgen.artifacts import read_json, write_json
    from kerasgen.callbacks import SampleQuality
    from kerasgen.runs.harness import quality_records_before
    from kerasgen.plots import read_history

    real = np.random.default_rng(0).uniform(size=(100, 8, 8, 1)).astype(np.float32)
    classifier, model, path, csv = _toy_classifier(), _Sampler(real), str(tmp_path / "q.json"), str(tmp_path / "h.csv")
    first = SampleQuality(classifier, real, every=3, num_samples=50, path=path)
    _run_epochs([first, HistoryCSV(csv)], model, epochs=4)
    history = read_history(csv)
    measured = [not np.isnan(fd) for fd in history["fd"]]
    assert measured == [True, False, True, True]  # epochs 1, 3 and 4 (the last); NA in between
    assert read_json(path) == {"every": 3, "records": first.records}

    # Resumed from the checkpoint after epoch 4 to train 2 more; a record past the checkpoint
    # (measured, then killed before the checkpoint was written) is dropped.
    write_json(path, {"every": 3, "records": [*first.records, {**first.records[-1], "epoch": 5}]})
    kept = quality_records_before(path, initial_epoch=4)
    assert kept == first.records and quality_records_before(path, initial_epoch=0) == []
    resumed = SampleQuality(classifier, real, every=3, num_samples=50, path=path, records=kept)
    _run_epochs([resumed, HistoryCSV(csv, append=True)], model, epochs=6, initial_epoch=4)
    assert [r["epoch"] for r in resumed.records] == [0, 1, 3, 4, 5, 6]
    assert [r["seconds"] for r in resumed.records] == sorted(r["seconds"] for r in resumed.records)
    history = read_history(csv)
    assert list(history["epoch"]) == [0, 1, 2, 3, 4, 5] and not any(np.isnan(history["fd"][4:]))
    assert read_json(path)["records"] == resumed.records

    # Resumed without earlier records: the first measurement is labelled with the resumed epoch.
    fresh = SampleQuality(classifier, real, every=3, num_samples=50)
    _run_epochs(fresh, model, epochs=6, initial_epoch=3)
    assert [r["epoch"] for r in fresh.records] == [3, 4, 6]


class _Autoencoder(_Sampler):
    """A stand-in with an encoder: `reconstruct` returns `noise`-weighted noise mixed into the input."""

    def __init__(self, pool, noise):
        super().__init__(pool)
        self.noise = noise

    def reconstruct(self, x):
        blur = np.random.default_rng(1).uniform(size=np.shape(x)).astype(np.float32)
        return (1.0 - self.noise) * np.asarray(x) + self.noise * blur


def test_sample_quality_measures_reconstructions_of_a_model_with_an_encoder():
    from kerasgen.callbacks import SampleQuality

    real = np.random.default_rng(0).uniform(size=(60, 8, 8, 1)).astype(np.float32)
    classifier = _toy_classifier()
    labels = np.argmax(classifier(real), axis=1)  # the classifier is right on every original
    records = {}
    for noise in (0.0, 0.8):
        callback = SampleQuality(classifier, real, every=2, num_samples=50, labels=labels)
        _run_epochs(callback, _Autoencoder(real, noise), epochs=2)
        records[noise] = callback.records[-1]
    # A perfect reconstruction: distance 0 and every class kept; a noisy one: neither.
    assert records[0.0]["reconstruction_fd"] < 1e-6 and records[0.0]["reconstruction_accuracy"] == 1.0
    assert records[0.8]["reconstruction_fd"] > 1e-3 and records[0.8]["reconstruction_accuracy"] < 1.0
    # Without labels only the distance; a model without an encoder gets neither key.
    unlabelled = SampleQuality(classifier, real, every=2, num_samples=50)
    _run_epochs(unlabelled, _Autoencoder(real, 0.8), epochs=1)
    assert unlabelled.records[-1]["reconstruction_accuracy"] is None
    assert unlabelled.records[-1]["reconstruction_fd"] == pytest.approx(records[0.8]["reconstruction_fd"])
    sampler_only = SampleQuality(classifier, real, every=2, num_samples=50)
    _run_epochs(sampler_only, _Sampler(real), epochs=1)
    assert "reconstruction_fd" not in sampler_only.records[-1]


@pytest.mark.parametrize("every", [0, 1.5, True])
def test_sample_quality_rejects_a_bad_schedule(every):
    from kerasgen.callbacks import SampleQuality

    with pytest.raises(ValueError, match="every"):
        SampleQuality(_toy_classifier(), np.zeros((4, 8, 8, 1), np.float32), every=every)
