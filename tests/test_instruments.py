"""The latent instruments against closed forms, and the training callback against `kerasgen evaluate`'s numbers."""

import json
import math
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from kerasgen import VAE
from kerasgen.artifacts import read_json, write_json
from kerasgen.callbacks import LatentDiagnostics
from kerasgen.evaluation.instruments import (
    LatentInstruments,
    batch_statistics,
    elbo_terms,
    kl_per_dimension,
    mutual_information,
)
from kerasgen.evaluation.likelihood import elbo, posterior_diagnostics
from kerasgen.plots import read_history
from kerasgen.runs.harness import quality_records_before

tfd = tfp.distributions
SEED = tf.constant([3, 0], tf.int32)


class FixedPosteriorModel:
    """q(z|x) = N(loc[i], diag(scale²)) for image i, read from the image's first pixel (its index)."""

    def __init__(self, loc, scale, prior=None):
        self.loc = tf.constant(loc, tf.float32)
        self.scale = tf.constant(scale, tf.float32)
        self.latent_dim = int(self.loc.shape[-1])
        self._prior = prior

    def posterior_distribution(self, x):
        index = tf.cast(tf.reshape(x, [tf.shape(x)[0], -1])[:, 0], tf.int32)
        scale = tf.broadcast_to(self.scale, [tf.shape(x)[0], self.latent_dim])
        return tfd.MultivariateNormalDiag(tf.gather(self.loc, index), scale)

    def prior(self):
        return self._prior or tfd.MultivariateNormalDiag(tf.zeros([self.latent_dim]), tf.ones([self.latent_dim]))

    def likelihood_distribution(self, z):
        # p(x|z): N(z_0, 1) on a 2x2x1 image's pixels, so the reconstruction term is known.
        loc = tf.broadcast_to(z[:, :1, None, None], [tf.shape(z)[0], 2, 2, 1])
        return tfd.Independent(tfd.Normal(loc, 1.0), 3)


def _index_images(n):
    """Images whose pixels all hold their index: `FixedPosteriorModel` reads it back."""
    return np.broadcast_to(np.arange(n, dtype=np.float32)[:, None, None, None], (n, 2, 2, 1)).copy()


def _standard_normal(d):
    return tfd.MultivariateNormalDiag(tf.zeros([d]), tf.ones([d]))


# --- KL per dimension ------------------------------------------------------------------------


def test_kl_per_dimension_equals_the_closed_form_and_sums_to_the_full_kl():
    # KL(N(0.2, var 1.2) || N(0,1)) = 0.0288 and KL(N(4, var 3) || N(0,1)) = 8.4506.
    a, b = math.sqrt(1.2), math.sqrt(3.0)
    q = tfd.MultivariateNormalDiag([[0.2, 4.0], [4.0, 0.2]], [[a, b], [b, a]])
    kl = kl_per_dimension(q, _standard_normal(2)).numpy()
    np.testing.assert_allclose(kl, [[0.0288, 8.4506], [8.4506, 0.0288]], atol=1e-4)
    np.testing.assert_allclose(kl.sum(axis=1), tfd.kl_divergence(q, _standard_normal(2)).numpy(), rtol=1e-6)

    # Against a prior that is not N(0, I), each dimension is the 1-D Gaussian KL.
    prior = tfd.Independent(tfd.Normal([1.0, -2.0], [0.5, 3.0]), 1)
    expected = tfd.kl_divergence(tfd.Normal(q.mean(), q.stddev()), tfd.Normal([1.0, -2.0], [0.5, 3.0])).numpy()
    np.testing.assert_allclose(kl_per_dimension(q, prior).numpy(), expected, rtol=1e-5)


def test_kl_per_dimension_refuses_a_point_mass_and_a_mixture_prior():
    point_mass = tfd.Independent(tfd.Deterministic(tf.zeros([3, 2])), 1)
    with pytest.raises(ValueError, match="point mass.*Received: posterior=Independent, prior=MultivariateNormalDiag"):
        kl_per_dimension(point_mass, _standard_normal(2))
    mixture = tfd.MixtureSameFamily(tfd.Categorical(logits=[0.0, 0.0]), tfd.MultivariateNormalDiag([[-3.0, 0.0], [3.0, 0.0]]))
    q = tfd.MultivariateNormalDiag(tf.zeros([3, 2]))
    with pytest.raises(ValueError, match="no closed form.*Received: posterior=MultivariateNormalDiag, prior=MixtureSameFamily"):
        kl_per_dimension(q, mixture)

    # The instruments leave the KL per dimension out and say why; the rest needs no prior.
    model = FixedPosteriorModel([[0.0, 1.0], [2.0, 1.0]], [0.1, 0.1], prior=mixture)
    result = LatentInstruments(model, elbo=False)(_index_images(2))
    assert result["kl_per_dimension"] is None and "MixtureSameFamily" in result["kl_per_dimension_skipped"]
    assert result["active_units"] == 1


# --- Active units --------------------------------------------------------------------------------


def test_active_units_count_the_dimensions_whose_posterior_mean_varies_over_images():
    rng = np.random.default_rng(0)
    n, d = 50, 6
    loc = np.tile(rng.standard_normal(d), (n, 1))  # every mean constant over images ...
    loc[:, 1] = rng.standard_normal(n)  # ... but dimension 1 (variance ≈ 1),
    loc[:, 4] = 0.3 * rng.standard_normal(n)  # 4 (≈ 0.09)
    loc[:, 2] = 0.05 * rng.standard_normal(n)  # and 2, below the threshold (≈ 0.0025)
    model = FixedPosteriorModel(loc, np.full(d, 0.5))
    result = LatentInstruments(model)(_index_images(n), batch_size=16)  # ragged batches: 16, 16, 16, 2
    assert result["active_units"] == 2
    np.testing.assert_allclose(result["active_unit_variances"], loc.var(axis=0), rtol=1e-4, atol=1e-10)
    assert np.flatnonzero(np.array(result["active_unit_variances"]) > 0.01).tolist() == [1, 4]
    # The threshold is the knob: 0.001 also counts dimension 2.
    assert LatentInstruments(model, active_unit_threshold=0.001)(_index_images(n))["active_units"] == 3


# --- Mutual information ----------------------------------------------------------------------


def test_mutual_information_is_zero_when_the_posterior_ignores_x():
    q = tfd.MultivariateNormalDiag(tf.fill([64, 3], 0.4), [0.7, 1.3, 0.2])
    assert abs(float(mutual_information(q, SEED, num_samples=5))) < 1e-5


@pytest.mark.parametrize("n", [8, 64])
def test_mutual_information_of_well_separated_posteriors_is_log_n(n):
    # Each image's posterior sits 10 standard deviations from every other: z names the image.
    q = tfd.MultivariateNormalDiag(np.stack([np.arange(n), -np.arange(n)], axis=1).astype("float32"), [0.1, 0.1])
    assert float(mutual_information(q, SEED)) == pytest.approx(math.log(n), abs=1e-4)
    # Neighbours 0.7 standard deviations apart: they overlap, and z says less.
    overlapping = tfd.MultivariateNormalDiag(q.mean() * 0.5, [1.0, 1.0])
    assert 0.3 < float(mutual_information(overlapping, SEED)) < math.log(n) - 1.0


# --- The ELBO split --------------------------------------------------------------------------


def test_elbo_terms_split_into_the_reconstruction_and_the_kl_that_the_dimensions_sum_to():
    loc = np.array([[0.5, -1.0], [2.0, 0.0], [-0.5, 0.3]], np.float32)
    model = FixedPosteriorModel(loc, [0.2, 0.8])
    images = tf.constant(_index_images(3))
    reconstruction, kl = elbo_terms(model, images, SEED)
    statistics, refusal = batch_statistics(model, images, SEED, SEED)
    assert refusal is None
    # Analytic KL, averaged over the batch, equals the per-dimension KLs summed over dimensions.
    assert float(kl) == pytest.approx(float(tf.reduce_sum(statistics["kl_per_dimension"])) / 3, rel=1e-6)
    q = model.posterior_distribution(images)
    assert float(kl) == pytest.approx(float(tf.reduce_mean(tfd.kl_divergence(q, model.prior()))), rel=1e-6)
    # −log N(x | z_0, 1) over 4 pixels, with the same seeded z.
    z0 = q.sample(seed=SEED)[:, 0].numpy()
    expected = np.mean([2 * math.log(2 * math.pi) + 2 * (i - z) ** 2 for i, z in enumerate(z0)])
    assert float(reconstruction) == pytest.approx(expected, rel=1e-5)


# --- The callback, and the evaluation's numbers -------------------------------------------------


def _tiny_vae():
    keras.utils.set_random_seed(0)
    vae = VAE(image_shape=(16, 16, 1), latent_dim=2, num_filters=(4,), hidden_dim=8, seed=0)
    vae.compile(optimizer=keras.optimizers.Adam(3e-3))
    return vae


def test_the_callback_measures_what_evaluate_reports_for_the_same_model_and_images(binary_images):
    vae = _tiny_vae()
    vae.fit(binary_images, epochs=2, batch_size=8, verbose=0)
    callback = LatentDiagnostics(binary_images, seed=5)
    callback.set_model(vae)
    callback.on_train_begin()
    record = callback.measure(2)
    # `kerasgen evaluate`'s functions on the same images as one batch, with the same seed.
    dataset = tf.data.Dataset.from_tensor_slices((binary_images, np.zeros(16, "int32"))).batch(16)
    bound, posterior = elbo(vae, dataset, seed=5), posterior_diagnostics(vae, dataset, seed=5)
    assert record["elbo"] == bound["elbo"] and record["kl"] == bound["kl"]
    assert record["reconstruction"] == bound["reconstruction"]
    for name in ("kl_per_dimension", "active_units", "active_unit_variances", "mutual_information"):
        assert record[name] == posterior[name], name
    # Compiled once: measuring again (as every epoch does) reuses the graph, to the same numbers.
    assert callback.measure(3) == {**record, "epoch": 3}
    assert callback._instruments._step.experimental_get_tracing_count() == 1


def test_the_callback_logs_every_epoch_to_the_csv_json_and_tensorboard_and_survives_a_resume(tmp_path, binary_images):
    vae = _tiny_vae()
    path, csv, logdir = str(tmp_path / "latent.json"), str(tmp_path / "history.csv"), str(tmp_path / "logs")
    first = LatentDiagnostics(binary_images[:12], path=path, logdir=logdir, info={"run": "test"})
    vae.fit(binary_images, epochs=2, batch_size=8, verbose=0, callbacks=[first, keras.callbacks.CSVLogger(csv)])
    assert [r["epoch"] for r in first.records] == [0, 1, 2]  # before training and after every epoch
    history = read_history(csv)
    for name, key in LatentDiagnostics.LOGGED.items():
        assert history[name] == pytest.approx([r[key] for r in first.records[1:]], rel=1e-6), name
    saved = read_json(path)
    assert saved["records"] == first.records and saved["run"] == "test"
    assert saved["num_images"] == 12 and saved["mutual_information_bound"] == pytest.approx(math.log(12))
    assert all(0.0 <= r["mutual_information"] <= math.log(12) + 1e-6 for r in first.records)
    assert all(sum(r["kl_per_dimension"]) == pytest.approx(r["kl"], rel=1e-4) for r in first.records)
    tags = {}
    for event_file in os.listdir(os.path.join(logdir, "latent")):
        for event in tf.compat.v1.train.summary_iterator(os.path.join(logdir, "latent", event_file)):
            for value in event.summary.value:
                tags.setdefault(value.tag, []).append(event.step)
    assert tags == {"kl_per_dimension/0": [0, 1, 2], "kl_per_dimension/1": [0, 1, 2]}

    # Resumed after epoch 2 for one more; a record past the checkpoint (measured, then killed
    # before the checkpoint was written) is dropped, and epoch 2 is not measured twice.
    write_json(path, {**saved, "records": [*first.records, {**first.records[-1], "epoch": 3}]})
    kept = quality_records_before(path, initial_epoch=2)
    assert kept == first.records
    resumed = LatentDiagnostics(binary_images[:12], path=path, records=kept)
    vae.fit(binary_images, epochs=3, initial_epoch=2, batch_size=8, verbose=0,
            callbacks=[resumed, keras.callbacks.CSVLogger(csv, append=True)])
    assert [r["epoch"] for r in resumed.records] == [0, 1, 2, 3]
    assert read_json(path)["records"] == resumed.records
    assert list(read_history(csv)["epoch"]) == [0, 1, 2]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(images=np.zeros((1, 4, 4, 1))), r"Received: images.shape=\(1, 4, 4, 1\)"),
        (dict(images=np.zeros((4, 4))), r"Received: images.shape=\(4, 4\)"),
        (dict(num_mi_samples=0), "Received: num_mi_samples=0"),
        (dict(active_unit_threshold=-1.0), "Received: active_unit_threshold=-1.0"),
        (dict(seed="a"), "Received: seed='a'"),
    ],
)
def test_the_callback_checks_its_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LatentDiagnostics(**{"images": np.zeros((4, 4, 4, 1)), **kwargs})


@pytest.mark.slow
def test_train_vae_measures_the_instruments_into_the_history_and_latent_json(tmp_path):
    from kerasgen.cli import main

    rng = np.random.default_rng(0)
    data = tmp_path / "tiny.npz"
    np.savez(data, x_train=(rng.uniform(size=(48, 16, 16)) * 255).astype(np.uint8), y_train=np.arange(48) % 4)
    tiny = ["--dataset", str(data), "--num-filters", "4", "--hidden-dim", "8", "--latent-dim", "2", "--batch-size", "16",
            "--validation-size", "16", "--epochs", "2"]
    out = tmp_path / "run"
    assert main(["train-vae", *tiny, "--latent-images", "12", "--out", str(out)]) == 0
    latent = json.loads((out / "latent.json").read_text())
    assert [r["epoch"] for r in latent["records"]] == [0, 1, 2] and latent["num_images"] == 12
    history = read_history(str(out / "history.csv"))
    assert history["active_units"] == [r["active_units"] for r in latent["records"][1:]]
    # Off with 0: no file, no columns.
    off = tmp_path / "off"
    assert main(["train-vae", *tiny, "--latent-images", "0", "--out", str(off)]) == 0
    assert not (off / "latent.json").exists() and "active_units" not in read_history(str(off / "history.csv"))
