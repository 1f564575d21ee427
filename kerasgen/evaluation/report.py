"""`kerasgen evaluate`: every number about a trained model, with its settings, and the plots."""

import dataclasses
import os
import time

import keras
import numpy as np

# Registers kerasgen's model classes, which `load_run` needs to read a run's model.
import kerasgen.models  # noqa: F401
from kerasgen import distributions
from kerasgen.artifacts import load_run, write_json
from kerasgen.config import TrainClassifierConfig
from kerasgen.data import load_dataset
from kerasgen.evaluation import likelihood, reconstruction, sample_quality
from kerasgen.evaluation.domain import choose_classifier, heldout_images_and_labels
from kerasgen.images import image_grid, save_png


@dataclasses.dataclass(frozen=True)
class Report:
    """What `evaluate` wrote: the metrics (also in `metrics.json`) and the PNG paths."""

    metrics: dict
    path: str
    plots: list


def evaluate(config, classifier=None, train=None):
    """Evaluates a saved model (a VAE, a GAN, ...) as `config` (an `EvaluateConfig`) says and writes the report.

    The held-out images are the run's own: the same source, split seed and validation size as
    training (from the run's `config.json`), so mnist-5k is never evaluated on training digits.
    Likelihood numbers, for models whose `defines_likelihood` is true, use the run's binarization
    (held-out images binarized once, with a fixed seed); sample-quality numbers compare decoded
    mean images with the grey held-out images, on the features of a classifier of the data's
    domain (`evaluation.domain.choose_classifier`: the `--classifier`, the shipped digit one where it
    scores the data's held-out images well, or one trained on the data into `MODEL/classifier` by
    `train`);
    the report says which, and how accurate. Models with `reconstruct` get the same classifier's
    view of their reconstructions of the grey held-out images (`reconstruction`); models with
    `posterior_distribution` and `prior` get the MMD between their codes of the held-out images,
    binarized as in training, and prior draws (`aggregated_posterior`).

    Args:
        config: an `EvaluateConfig`.
        classifier: `(ClassifierChoice or None, reason)` already chosen (the pipeline chooses once
            for both its models), or None to choose here.
        train: `(TrainClassifierConfig) -> any`, what trains a classifier on the data when no
            shipped one serves it (`kerasgen evaluate` passes `runs.classifier.train_classifier`);
            None: never train, and sample metrics are then skipped with the reason.

    Raises:
        FileNotFoundError, ValueError: the model or the `--classifier` is missing or unusable.
    """
    started = time.perf_counter()
    model, run, folder = load_run(config.model)
    source = config.dataset or run.get("dataset", "mnist-5k")
    split = dict(
        validation_size=run.get("validation_size", 500),
        seed=run.get("split_seed", run.get("seed", 0)),
        image_size=tuple(run["image_size"]) if run.get("image_size") else None,
        data_dir=config.data_dir or run.get("data_dir"),
        batch_size=config.batch_size,
        stream=run.get("stream", False),
    )
    binarize = run.get("binarize") or ("dynamic" if getattr(model, "likelihood", None) == "bernoulli" else "none")
    data = load_dataset(source, binarize=binarize, **split)
    if tuple(data.image_shape) != tuple(model.image_shape):
        raise ValueError(
            f"The model was trained on images of shape {tuple(model.image_shape)}, but {source!r} has "
            f"shape {data.image_shape}. Received: --dataset {source!r}"
        )
    heldout_name = "test" if data.test is not None else "validation"
    metrics = {
        "model": config.model,
        "dataset": {
            "source": source,
            "heldout_split": heldout_name,
            "heldout_images": data.num_test or data.num_validation,
            "binarize": binarize,
            "binarized_once_with_seed": split["seed"] if binarize != "none" else None,
            **{k: v for k, v in split.items() if k != "batch_size"},
        },
        "seed": config.seed,
    }

    # A VAE-GAN's or deterministic AAE's q(z|x) is no proposal for importance sampling: no log p(x) then.
    if getattr(model, "defines_likelihood", False):
        print(f"Likelihood on {metrics['dataset']['heldout_images']} held-out images ({heldout_name}) ...")
        metrics["elbo"] = likelihood.elbo(model, data.heldout, seed=config.seed)
        iwae = likelihood.importance_weighted_log_likelihood(
            model, data.heldout, num_samples=config.k, chunk_size=chunk_size(config, model), seed=config.seed
        )
        metrics["importance_weighted"] = {k: v for k, v in iwae.items() if k != "per_image_log_likelihood"}
        if binarize == "none":
            _add_bits_per_dimension(model, metrics)
        metrics["posterior"] = likelihood.posterior_diagnostics(
            model, data.heldout.unbatch().batch(config.diagnostics_batch_size), seed=config.seed
        )

    grey = load_dataset(source, binarize="none", **split)
    if classifier is None:
        classifier_config = None if train is None else TrainClassifierConfig(
            dataset=source, data_dir=split["data_dir"], image_size=split["image_size"],
            validation_size=split["validation_size"], seed=split["seed"], stream=split["stream"],
        )
        classifier = choose_classifier(config.classifier, grey, folder, classifier_config, model.image_shape, train=train)
    choice, reason = classifier
    # Loaded once: sample quality and reconstructions are judged by the same classifier.
    loaded = None if choice is None else choice.load(model.image_shape)
    metrics["samples"] = _sample_quality(model, config, grey, choice, reason, loaded)
    if hasattr(model, "reconstruct"):
        metrics["reconstruction"] = _reconstruction(model, config, grey, choice, reason, loaded)
    if hasattr(model, "posterior_distribution") and hasattr(model, "prior"):
        print(f"Aggregated posterior vs prior on {metrics['dataset']['heldout_images']} held-out images ...")
        images = np.concatenate([x for x, _ in data.heldout.as_numpy_iterator()])
        # The function's own batch size, not --batch-size: the draws, so the number, depend on it.
        metrics["aggregated_posterior"] = reconstruction.aggregated_posterior_mmd(model, images, seed=config.seed)
    report_dir = config.report or os.path.join(folder, "report")
    plots = _plots(model, config, data, metrics, folder, report_dir, title=_title(model, source))
    metrics["seconds"] = time.perf_counter() - started
    write_json(os.path.join(report_dir, "metrics.json"), _plain(metrics))
    return Report(metrics=metrics, path=os.path.join(report_dir, "metrics.json"), plots=plots)


def _add_bits_per_dimension(model, metrics):
    """Bits per dimension beside the nats of the ELBO and log p(x), for a model of 8-bit images.

    Not for a Bernoulli likelihood: on unbinarized pixels its log_prob is a cross-entropy, not the
    probability of the 8-bit values. A density's bits add log2(255) (`distributions.bits_per_dimension`).
    """
    likelihood = distributions.get_likelihood(
        model.likelihood,
        getattr(model, "likelihood_scale", "pixel"),
        getattr(model, "likelihood_components", distributions.DEFAULT_MIXTURE_COMPONENTS),
    )
    if likelihood.name == "bernoulli":
        return
    dimensions = int(np.prod(model.image_shape))
    metrics["elbo"]["bits_per_dimension"] = distributions.bits_per_dimension(
        -metrics["elbo"]["elbo"], dimensions, likelihood.discrete
    )
    metrics["importance_weighted"]["bits_per_dimension"] = distributions.bits_per_dimension(
        -metrics["importance_weighted"]["log_likelihood"], dimensions, likelihood.discrete
    )
    metrics["elbo"]["bits_per_dimension_of"] = (
        "the probability of the 8-bit values" if likelihood.discrete
        else "the density at the bin centres times the bin width 1/255 (+log2 255), not dequantized"
    )


def _sample_quality(model, config, grey, choice, reason, classifier):
    if choice is None:
        return {"skipped": reason}
    real = grey.unbinarized_heldout
    generated = sample_quality.sample_images(model, config.num_samples, config.batch_size, config.seed)
    # The floor at the model's sizes: FD's finite-sample bias depends on both set sizes (mnist-5k's
    # 500 held-out digits give 17.8 against 500 training digits, 7.4 against all 4,500), so the
    # held-out images are compared with as many training images as there are samples; a training
    # split with fewer gives all it has, and the report says so.
    reference = training_images(grey.train, len(generated))
    features = {name: sample_quality.compute_features(classifier, images) for name, images in
                (("real", real), ("reference", reference), ("generated", generated))}
    kid_mean, kid_std = sample_quality.kernel_inception_distance(features["real"], features["generated"], seed=config.seed)
    logits = classifier.predict(generated, batch_size=config.batch_size, verbose=0)
    score_mean, score_std = sample_quality.classifier_score(logits)
    return {
        "classifier": choice.describe(),
        "num_generated": len(generated),
        "num_real": len(real),
        "frechet_distance": sample_quality.frechet_distance(features["real"], features["generated"]),
        "frechet_distance_real_vs_real": sample_quality.frechet_distance(features["real"], features["reference"]),
        # The floor's second set: training images, disjoint from the held-out ones.
        "num_real_vs_real_reference": len(reference),
        "kid": kid_mean,
        "kid_std": kid_std,
        "classifier_score": score_mean,
        "classifier_score_std": score_std,
        "predicted_class_fractions": sample_quality.class_histogram(logits, classifier.num_classes).tolist(),
    }


def training_images(train, count):
    """The first `count` images of a training dataset of `(images, labels)` batches; all of them if it has fewer.

    The real-vs-real Fréchet distance compares them with the held-out images, which a training
    split never holds.

    Raises:
        ValueError: the dataset has no images.
    """
    batches, total = [], 0
    for x, _ in train.as_numpy_iterator():
        batches.append(x[: count - total])
        total += len(batches[-1])
        if total >= count:
            break
    if not total:
        raise ValueError("The real-vs-real Fréchet distance needs training images. Received: an empty training split")
    return np.concatenate(batches)


def _reconstruction(model, config, grey, choice, reason, classifier):
    if choice is None:
        return {"skipped": reason}
    images, labels = heldout_images_and_labels(grey)
    # A classifier with other classes than the data's (a --classifier) has no accuracy on its labels.
    comparable = choice.heldout_accuracy is not None
    return reconstruction.reconstruction_quality(
        model, images, labels if comparable else None, classifier, batch_size=config.batch_size
    )


def _plots(model, config, data, metrics, folder, report_dir, title):
    from kerasgen import plots

    written = []

    def path(name):
        written.append(os.path.join(report_dir, name))
        return written[-1]

    save_png(path("samples.png"), image_grid(keras.ops.convert_to_numpy(model.sample(64, seed=config.seed))))
    history = os.path.join(folder, "history.csv")
    if hasattr(model, "encode") and os.path.isfile(history):
        plots.plot_history(history, path("training_curves.png"), title=title)
    if os.path.isdir(os.path.join(folder, "samples")):
        plots.plot_training_progress(os.path.join(folder, "samples"), path("training_progress.png"), title=title)
    if hasattr(model, "encode"):
        images, labels = (np.concatenate(parts) for parts in zip(*data.heldout.as_numpy_iterator()))
        plots.plot_latent_scatter(model, images, labels, path("latent_scatter.png"), title=title)
        pairs = np.stack([images[0:2], images[2:4], images[4:6], images[6:8]])
        plots.plot_interpolations(model, pairs, path("interpolations.png"), title=title)
        if model.latent_dim == 2:
            plots.plot_latent_manifold(model, path("latent_manifold.png"), title=title)
    if "posterior" in metrics and metrics["posterior"]["kl_per_dimension"] is not None:
        posterior = metrics["posterior"]
        plots.plot_kl_per_dimension(
            posterior["kl_per_dimension"],
            posterior["active_unit_variances"],
            path("kl_per_dimension.png"),
            threshold=posterior["active_unit_threshold"],
            title=title,
        )
    return written


def _title(model, source):
    return f"{type(model).__name__} ({model.latent_dim}-d latent, {getattr(model, 'likelihood', '')}) on {source}"


def _plain(value):
    """JSON-ready: numpy scalars and arrays become Python numbers and lists."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def format_table(metrics):
    """The report's headline numbers as an aligned text table."""
    rows = []
    data = metrics["dataset"]
    held_out = f"{data['heldout_images']} {data['heldout_split']} images of {data['source']}"
    if "elbo" in metrics:
        iwae = metrics["importance_weighted"]
        posterior = metrics["posterior"]
        rows += [
            ("ELBO (nats / image)", f"{metrics['elbo']['elbo']:.2f}", held_out),
            ("  reconstruction", f"{metrics['elbo']['reconstruction']:.2f}", "−E_q[log p(x|z)]"),
            ("  KL", f"{metrics['elbo']['kl']:.2f}", "KL(q(z|x) ‖ p(z))"),
            (
                "log p(x) (nats / image)",
                f"{iwae['log_likelihood']:.2f} ± {iwae['standard_error']:.2f}",
                f"importance-weighted, K={iwae['num_samples']}",
            ),
        ]
        if "bits_per_dimension" in metrics["elbo"]:
            rows += [
                ("−ELBO (bits / dim)", f"{metrics['elbo']['bits_per_dimension']:.3f}", metrics["elbo"]["bits_per_dimension_of"]),
                ("−log p(x) (bits / dim)", f"{iwae['bits_per_dimension']:.3f}", f"importance-weighted, K={iwae['num_samples']}"),
            ]
        rows += [
            ("active units", f"{posterior['active_units']} / {len(posterior['active_unit_variances'])}", "Cov_x(E_q[z]) > 0.01"),
            (
                "mutual information I(x; z)",
                f"{posterior['mutual_information']:.2f}",
                f"nats, at most log(batch) = {posterior['mutual_information_bound']:.2f}",
            ),
        ]
    samples = metrics["samples"]
    if "skipped" in samples:
        rows.append(("sample quality", "skipped", samples["skipped"]))
    else:
        choice = samples["classifier"]
        accuracy = choice["heldout_accuracy"]
        rows.append((
            "classifier",
            choice["origin"],
            f"{choice['path']}" + ("" if accuracy is None else f", {100 * accuracy:.1f}% right on {choice['heldout_size']} held-out images"),
        ))
        setting = f"{samples['num_generated']} samples vs {samples['num_real']} held-out images"
        rows += [
            ("Fréchet distance", f"{samples['frechet_distance']:.2f}", setting),
            ("  real vs real", f"{samples['frechet_distance_real_vs_real']:.2f}", _real_vs_real_setting(samples)),
            ("KID", f"{samples['kid']:.3f} ± {samples['kid_std']:.3f}", "unbiased, over subsets"),
            ("classifier score", f"{samples['classifier_score']:.2f} ± {samples['classifier_score_std']:.2f}", "at most 10 for 10 classes"),
            (
                "predicted classes",
                " ".join(f"{100 * f:.0f}" for f in samples["predicted_class_fractions"]),
                "% of samples per class",
            ),
        ]
    if "reconstruction" in metrics:
        quality = metrics["reconstruction"]
        if "skipped" in quality:
            rows.append(("reconstruction", "skipped", quality["skipped"]))
        else:
            accuracy, ceiling = quality["accuracy"], quality["heldout_accuracy"]
            rows += [
                (
                    "reconstruction accuracy",
                    "n/a" if accuracy is None else f"{100 * accuracy:.1f}%",
                    "no comparable labels" if accuracy is None else
                    f"classifier on {quality['num_images']} reconstructions ({100 * ceiling:.1f}% on the originals)",
                ),
                (
                    "reconstruction FD",
                    f"{quality['frechet_distance']:.2f}",
                    f"reconstructions vs originals; pixel MSE {quality['mean_squared_error']:.4f}",
                ),
            ]
    if "aggregated_posterior" in metrics:
        aggregated = metrics["aggregated_posterior"]
        rows.append((
            "aggregated-posterior MMD",
            f"{aggregated['mmd']:.4f}",
            f"± {aggregated['mmd_standard_error']:.4f}: unbiased MMD²(q(z), p(z)), IMQ kernel, {aggregated['num_codes']} codes, "
            f"mean of {aggregated['repeats']} draws; ≈ 0 when matched",
        ))
    rows.append(("time", f"{metrics['seconds']:.0f} s", ""))
    width = max(len(r[0]) for r in rows), max(len(r[1]) for r in rows)
    return "\n".join(f"{name:<{width[0]}}  {value:>{width[1]}}  {note}" for name, value, note in rows)


def _real_vs_real_setting(samples):
    """What the real-vs-real floor compared: the model's sizes, or as near as the training split allows."""
    reference = samples["num_real_vs_real_reference"]
    setting = f"{samples['num_real']} held-out vs {reference} training images"
    if reference == samples["num_generated"]:
        return setting + ", the model's sizes"
    return setting + f" (all the training split has; the model's FD uses {samples['num_generated']} samples)"


# Images decoded in one pass by a PixelCNN decoder: 10,000 (100 samples of 100 images) took more
# than 23 GB on mnist-5k's 28 x 28 digits with 4 layers of 32 filters; 1,000 fit in a few.
PIXELCNN_IMAGES_PER_PASS = 1000


def chunk_size(config, model):
    """The importance samples decoded at once per image: `--chunk-size`, else 100, or for a
    PixelCNN decoder as many as keep one pass at `PIXELCNN_IMAGES_PER_PASS` images."""
    if config.chunk_size is not None:
        return config.chunk_size
    if getattr(model, "decoder_type", "conv") == "pixelcnn":
        return max(1, PIXELCNN_IMAGES_PER_PASS // config.batch_size)
    return 100
