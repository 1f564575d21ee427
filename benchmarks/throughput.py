"""Train-step throughput of kerasgen's VAE, GAN and Classifier, each beside a plain Keras step with the same layers.

`--config` picks the images and networks (`CONFIGS`):

- `digits` (default): 28x28x1 digits, the VAE's Bernoulli likelihood on dynamically binarized
  pixels, the 28x28 networks; VAE, GAN and Classifier; real data: full MNIST.
- `cifar32`, `cifar64`: 32x32x3 and 64x64x3 colour, the VAE as `kerasgen train-vae` chooses it for
  8-bit colour data (the discretized logistic mixture of 10 components, no binarization, the
  resnet preset of `networks.network_preset`) and `GAN.from_vae` of it; VAE and GAN only (the
  Classifier is left out: the colour comparison asked for is the generative models' steps). The
  plain twins write the mixture's log-likelihood and mean by hand in `keras.ops` (no TFP). Real
  data: the CIFAR-10 JPEG folder (resized to 64x64 for cifar64), read into memory and also
  streamed (`stream=True`: every JPEG decoded every epoch).

One run prints up to four sections and a summary, and writes them as JSON (`--out`; `--sections`
picks the sections after the first):

1. Compute. For every model, batch size and XLA setting, the kerasgen step and its plain twin
   (same networks, optimizer and work, losses written by hand without TFP; the plain GAN keeps
   the R1 penalty and the generator EMA) in interleaved rounds, fed one cached batch: images/s,
   FLOPs per image, GFLOP/s and the fraction of a matmul peak measured just before and just after
   the round (the machine's speed moves between rounds; the fraction moves less). Medians over
   rounds. Each measurement is `--steps` timed steps after one untimed warm-up step.
2. Input pipeline. Each model's fastest kerasgen step fed the cached batch and the real
   `load_dataset` pipeline (dynamic binarization, full MNIST by default; for colour the JPEG
   folder in memory and streamed), and the pipeline alone.
3. tf.distribute. Images/s under `MirroredStrategy` with 1 and 2 devices, in a subprocess
   (logical CPU devices must be set before TensorFlow starts).
4. Steps per execution: each kerasgen step at the smallest batch with 1 and 8 steps per
   compiled call (`compile(steps_per_execution=...)`).

FLOPs: TF's profiler (`float_operation`) on the graph of `tf.function(model.train_step)` traced
for the batch shape, divided by the batch size: every op with a registered FLOP count (conv,
matmul and their gradients, element-wise arithmetic). A GAN step is `d_steps` (1) discriminator
updates, each with the R1 double backward pass, one generator update and the EMA update, all
per real image. The traced graph is the same with XLA on or off.

    python benchmarks/throughput.py [--config digits|cifar32|cifar64] [--quick] [--rounds 6] [--steps 5]
        [--batch-sizes 64,256,1024] [--models vae,gan,classifier] [--xla on,off]
        [--mixed-precision float16|bfloat16] [--sections compute,pipeline,distributed,steps_per_execution]
        [--data /work/shared/data/mnist] [--out benchmarks/results/throughput/throughput.json]
"""

import argparse
import dataclasses
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import kerasgen  # noqa: E402

kerasgen.quiet_tensorflow_startup()  # this script owns its terminal: TensorFlow's start-up lines are filtered

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_probability as tfp  # noqa: E402
from keras import layers, ops  # noqa: E402

from kerasgen import GAN, VAE, Classifier  # noqa: E402
from kerasgen.data import load_dataset  # noqa: E402
from kerasgen.distributions import get_likelihood  # noqa: E402
from kerasgen.networks import build_decoder, build_discriminator, build_encoder, network_preset  # noqa: E402

tf.get_logger().setLevel("ERROR")  # the profiler's deprecation notice
warnings.filterwarnings("ignore", message="Model doesn't support `jit_compile")  # reported as "skipped"
# The digits' networks (`--config digits`), measured as they were before there were configs.
IMAGE_SHAPE, LATENT_DIM, NUM_FILTERS, HIDDEN_DIM = (28, 28, 1), 16, (32, 64), 256
MODELS, VARIANTS = ("vae", "gan", "classifier"), ("kerasgen", "plain")
SECTIONS = ("compute", "pipeline", "distributed", "steps_per_execution")
DEFAULT_DATA = "/work/shared/data/mnist"
DEFAULT_COLOUR_DATA = "/work/shared/data/cifar10"
RESULTS = os.path.join(os.path.dirname(__file__), "results", "throughput")


@dataclasses.dataclass(frozen=True)
class BenchmarkConfig:
    """What one `--config` measures: the images, kerasgen's VAE for them (and its GAN), the real data.

    Attributes:
        name: str, `--config`'s value.
        image_shape: tuple `(height, width, channels)`.
        latent_dim, num_filters, hidden_dim, architecture, num_blocks: the VAE's networks.
        likelihood: str, the VAE's p(x|z), as `kerasgen train-vae` chooses it for such data.
        binarize: str, `load_dataset`'s binarization of the real pipeline.
        data: str, the real pipeline's default source.
        image_size: `(height, width)` or None, `load_dataset`'s resize of the real data.
        models: tuple, the models measured by default (and the only ones allowed).
        stream: bool, also measures the real data streamed from its files (`stream=True`).
        out: str, the default `--out`.
    """

    name: str
    image_shape: tuple
    latent_dim: int
    num_filters: tuple
    hidden_dim: int
    architecture: str = "conv"
    num_blocks: int = 1
    latent_layout: str = "vector"
    likelihood: str = "bernoulli"
    binarize: str = "dynamic"
    data: str = DEFAULT_DATA
    image_size: tuple = None
    models: tuple = MODELS
    stream: bool = False
    out: str = os.path.join(RESULTS, "throughput.json")


def colour_config(name, side):
    """A colour config: `network_preset`'s networks for `side`x`side`x3 and the logistic mixture (`runs/choose.py`)."""
    preset = network_preset((side, side, 3))
    return BenchmarkConfig(
        name, (side, side, 3), preset["latent_dim"], tuple(preset["num_filters"]), preset["hidden_dim"],
        architecture=preset["architecture"], num_blocks=preset["num_blocks"], latent_layout=preset["latent_layout"],
        likelihood="logistic_mixture",
        binarize="none", data=DEFAULT_COLOUR_DATA, image_size=None if side == 32 else (side, side),
        models=("vae", "gan"), stream=True, out=os.path.join(RESULTS, f"throughput_{name}.json"),
    )


CONFIGS = {
    "digits": BenchmarkConfig("digits", IMAGE_SHAPE, LATENT_DIM, NUM_FILTERS, HIDDEN_DIM),
    "cifar32": colour_config("cifar32", 32),
    "cifar64": colour_config("cifar64", 64),
}


# --- The discretized logistic mixture, written by hand ----------------------------------------------

# The 256 levels k/255 and half a bin, as `kerasgen/logistic_mixture.py` has them.
NUM_LEVELS = 256
HALF_BIN = 0.5 / (NUM_LEVELS - 1)
MIN_LOG_SCALE, MAX_LOG_SCALE = -8.0, 3.0


def split_mixture(params, num_components, channels):
    """Decoder parameters `[B, H, W, K (C + 1)(C + 2)/2]` → logits, loc, log-scale, coefficients.

    Shapes: logits `[B, H, W, K]`, loc and log-scale `[..., K, C]`, coefficients `[..., K, C(C − 1)/2]`.

    kerasgen's layout: K logits, then K·C means, K·C log-scales and K·C(C − 1)/2 coupling
    coefficients, each block component-major; log-scales clipped to [−8, 3], coefficients through tanh.
    """
    k, c, pairs = num_components, channels, channels * (channels - 1) // 2
    logits, loc, log_scale, coefficients = ops.split(params, [k, k + k * c, k + 2 * k * c], axis=-1)
    batch_shape = ops.shape(params)[:-1]
    loc = ops.reshape(loc, (*batch_shape, k, c))
    log_scale = ops.clip(ops.reshape(log_scale, (*batch_shape, k, c)), MIN_LOG_SCALE, MAX_LOG_SCALE)
    coefficients = ops.tanh(ops.reshape(coefficients, (*batch_shape, k, pairs)))
    return logits, loc, log_scale, coefficients


def mixture_log_prob(x, params, num_components):
    """log p(x) per image, `[B]`, of 8-bit images `x` `[B, H, W, C]` in [0, 1]: PixelCNN++'s mixture loss.

    Channel c of component k is a logistic around μ_kc shifted by the pixel's earlier channels,
    discretized to bins of width 1/255 at k/255, the bins at 0 and 1 taking the tails. A bin's
    log-probability is log(σ(a) − σ(b)) = log σ(a) + log σ(−b) + log(1 − e^(b − a)), the exact form
    kerasgen uses (PixelCNN++'s code falls back to the density at the bin centre where σ(a) − σ(b)
    < 1e-5; this never underflows, so it needs no fallback, and is the same work as kerasgen's).
    """
    x = ops.cast(x, "float32")
    logits, loc, log_scale, coefficients = split_mixture(params, num_components, x.shape[-1])
    x = x[..., None, :]  # [B, H, W, 1, C], broadcast over the components
    shifted, pair = [], 0
    for c in range(loc.shape[-1]):
        mean = loc[..., c]
        for j in range(c):  # PixelCNN++'s coupling: G shifted by R, B by R and G
            mean = mean + coefficients[..., pair] * x[..., j]
            pair += 1
        shifted.append(mean)
    centred = x - ops.stack(shifted, axis=-1)
    inverse_scale = ops.exp(-log_scale)
    plus_in = inverse_scale * (centred + HALF_BIN)
    min_in = inverse_scale * (centred - HALF_BIN)
    log_cdf_plus = ops.log_sigmoid(plus_in)  # the bin at 0 takes the lower tail
    log_one_minus_cdf_min = ops.log_sigmoid(-min_in)  # the bin at 1 the upper one
    log_width = ops.log(-ops.expm1(-2.0 * HALF_BIN * inverse_scale))
    log_probs = ops.where(
        x < HALF_BIN, log_cdf_plus,
        ops.where(x > 1.0 - HALF_BIN, log_one_minus_cdf_min, log_cdf_plus + log_one_minus_cdf_min + log_width))
    log_probs = ops.sum(log_probs, axis=-1) + ops.log_softmax(logits, axis=-1)
    return ops.sum(ops.logsumexp(log_probs, axis=-1), axis=(1, 2))


def mixture_mean(params, num_components, channels):
    """The mixture's mean image `[B, H, W, C]`, as kerasgen's `DiscretizedLogisticMixture.mean`.

    Per component, E[clip(Y, 0, 1)] = s·(softplus(m/s) − softplus((m − 1)/s)) for a logistic Y
    of mean m and scale s, the coupling taken at the earlier channels' component means.
    """
    logits, loc, log_scale, coefficients = split_mixture(ops.cast(params, "float32"), num_components, channels)
    scale = ops.exp(log_scale)
    means, pair = [], 0
    for c in range(channels):
        shifted = loc[..., c]
        for j in range(c):
            shifted = shifted + coefficients[..., pair] * means[j]
            pair += 1
        s = scale[..., c]
        means.append(s * (ops.softplus(shifted / s) - ops.softplus((shifted - 1.0) / s)))
    return ops.sum(ops.softmax(logits, axis=-1)[..., None] * ops.stack(means, axis=-1), axis=-2)


class MixtureMean(layers.Layer):
    """The plain GAN generator's head on colour: decoder parameters → the mixture's mean image."""

    def __init__(self, num_components, channels, **kwargs):
        super().__init__(**kwargs)
        self.num_components, self.channels = num_components, channels

    def call(self, params):
        return mixture_mean(params, self.num_components, self.channels)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.channels)

    def get_config(self):
        return {**super().get_config(), "num_components": self.num_components, "channels": self.channels}


# --- The plain twins ---------------------------------------------------------------------------


def network_arguments(config):
    """The keyword arguments kerasgen's VAE gives `build_encoder`, `build_decoder` (and, but the
    latent's layout, `build_discriminator`) for `config`."""
    return {"architecture": config.architecture, "num_blocks": config.num_blocks, "latent_layout": config.latent_layout}


def plain_decoder(config):
    """kerasgen's VAE decoder network for `config`: the channels (and head) its likelihood asks for."""
    likelihood = get_likelihood(config.likelihood)
    height, width, channels = config.image_shape
    return build_decoder(config.latent_dim, (height, width, likelihood.network_channels(channels)), config.num_filters,
                         config.hidden_dim, head=likelihood.decoder_head(config.image_shape), **network_arguments(config))


class PlainVAE(keras.Model):
    """The textbook Keras VAE: same networks, ELBO written out (BCE from logits, or the mixture, + analytic KL)."""

    def __init__(self, config=CONFIGS["digits"]):
        super().__init__()
        self.config = config
        self.encoder = build_encoder(config.image_shape, config.num_filters, config.hidden_dim, 2 * config.latent_dim,
                                     **network_arguments(config))
        self.decoder = plain_decoder(config)
        if config.likelihood == "logistic_mixture":
            self.num_components = get_likelihood(config.likelihood).num_components
        elif config.likelihood != "bernoulli":
            raise ValueError(f"PlainVAE writes out 'bernoulli' and 'logistic_mixture'. Received: {config.likelihood!r}")
        self.seed_generator = keras.random.SeedGenerator(0)
        self.trackers = [keras.metrics.Mean(name=n) for n in ("loss", "reconstruction", "kl")]

    @property
    def metrics(self):
        return self.trackers

    def train_step(self, data):
        x = ops.cast(data[0], "float32")
        with tf.GradientTape() as tape:
            params = ops.cast(self.encoder(x, training=True), "float32")
            loc, raw_scale = ops.split(params, 2, axis=-1)
            scale = ops.softplus(raw_scale) + 1e-5
            z = loc + scale * keras.random.normal(ops.shape(loc), seed=self.seed_generator)
            pixel_params = ops.cast(self.decoder(z, training=True), "float32")
            if self.config.likelihood == "bernoulli":
                bce = ops.binary_crossentropy(x, pixel_params, from_logits=True)
                reconstruction = ops.mean(ops.sum(bce, axis=(1, 2, 3)))
            else:
                reconstruction = -ops.mean(mixture_log_prob(x, pixel_params, self.num_components))
            kl = ops.mean(ops.sum(0.5 * (ops.square(loc) + ops.square(scale) - 1.0) - ops.log(scale), axis=-1))
            loss = reconstruction + kl
            scaled_loss = self.optimizer.scale_loss(loss)
        self.optimizer.apply(tape.gradient(scaled_loss, self.trainable_variables), self.trainable_variables)
        for tracker, value in zip(self.trackers, (loss, reconstruction, kl)):
            tracker.update_state(value)
        return {m.name: m.result() for m in self.metrics}


class PlainGAN(keras.Model):
    """The textbook Keras GAN: logistic losses, R1 on real images and a generator EMA, written out."""

    def __init__(self, generator, discriminator, r1_weight=10.0, ema_decay=0.99):
        super().__init__()
        self.generator, self.discriminator = generator, discriminator
        self.latent_dim = generator.input_shape[-1]
        self.r1_weight, self.ema_decay = r1_weight, ema_decay
        self.ema_generator = keras.models.clone_model(generator)
        self.ema_generator.trainable = False
        self.seed_generator = keras.random.SeedGenerator(0)
        self.trackers = [keras.metrics.Mean(name=n) for n in ("d_loss", "g_loss", "r1")]

    @property
    def metrics(self):
        return self.trackers

    def compile(self, d_optimizer, g_optimizer, **kwargs):
        super().compile(**kwargs)
        if self.dtype_policy.name == "mixed_float16":  # as Keras does for a single optimizer
            d_optimizer, g_optimizer = map(keras.optimizers.LossScaleOptimizer, (d_optimizer, g_optimizer))
        self.d_optimizer, self.g_optimizer = d_optimizer, g_optimizer

    def _logits(self, images):
        return ops.cast(self.discriminator(images, training=True), "float32")

    def train_step(self, data):
        real = ops.cast(data[0], "float32")
        noise_shape = (ops.shape(real)[0], self.latent_dim)
        fake = self.generator(keras.random.normal(noise_shape, seed=self.seed_generator), training=True)
        with tf.GradientTape() as tape:
            with tf.GradientTape() as r1_tape:
                r1_tape.watch(real)
                real_logits = self._logits(real)
                logit_sum = ops.sum(real_logits)
            r1 = ops.mean(ops.sum(ops.square(r1_tape.gradient(logit_sum, real)), axis=(1, 2, 3)))
            d_loss = ops.mean(ops.softplus(-real_logits)) + ops.mean(ops.softplus(self._logits(fake)))
            scaled_loss = self.d_optimizer.scale_loss(d_loss + 0.5 * self.r1_weight * r1)
        d_variables = self.discriminator.trainable_variables
        self.d_optimizer.apply(tape.gradient(scaled_loss, d_variables), d_variables)
        with tf.GradientTape() as tape:
            z = keras.random.normal(noise_shape, seed=self.seed_generator)
            g_loss = ops.mean(ops.softplus(-self._logits(self.generator(z, training=True))))
            scaled_loss = self.g_optimizer.scale_loss(g_loss)
        g_variables = self.generator.trainable_variables
        self.g_optimizer.apply(tape.gradient(scaled_loss, g_variables), g_variables)
        for average, variable in zip(self.ema_generator.weights, self.generator.weights):
            average.assign(self.ema_decay * average + (1.0 - self.ema_decay) * variable)
        for tracker, value in zip(self.trackers, (d_loss, g_loss, r1)):
            tracker.update_state(value)
        return {m.name: m.result() for m in self.metrics}


def plain_classifier(config=CONFIGS["digits"]):
    """kerasgen's Classifier's layers (shift, 2x(2 conv + pool), dense 128, dropout, logits) as a Sequential."""
    convs = []
    for filters in config.num_filters:
        convs += [layers.Conv2D(filters, 3, padding="same", activation="relu") for _ in range(2)]
        convs.append(layers.MaxPooling2D(2, padding="same"))
    return keras.Sequential([
        keras.Input(config.image_shape), layers.RandomTranslation(0.1, 0.1, fill_mode="constant", seed=0), *convs,
        layers.Flatten(), layers.Dense(128, activation="relu"), layers.Dropout(0.3, seed=1), layers.Dense(10),
    ])


def kerasgen_vae(config):
    """kerasgen's VAE for `config`, with the arguments `kerasgen train-vae` chooses (`runs/vae.py`, `choose.py`).

    The arguments the choice leaves alone stay at `VAE`'s defaults, which are train-vae's.
    """
    return VAE(
        image_shape=config.image_shape, latent_dim=config.latent_dim, likelihood=config.likelihood,
        num_filters=config.num_filters, hidden_dim=config.hidden_dim, architecture=config.architecture,
        num_blocks=config.num_blocks, latent_layout=config.latent_layout, seed=0,
    )


def plain_discriminator(config):
    """The discriminator `GAN.from_vae` builds for the VAE of `config` (`adversarial.default_discriminator`)."""
    if config.architecture == "conv":
        return build_discriminator(config.image_shape)
    return build_discriminator(
        config.image_shape, config.num_filters, architecture=config.architecture, num_blocks=config.num_blocks
    )


def plain_generator(config):
    """The decoder followed by the likelihood's mean, written out: a sigmoid, or the mixture's mean."""
    z = keras.Input((config.latent_dim,))
    if config.likelihood == "bernoulli":
        mean = layers.Activation("sigmoid", dtype="float32")
    else:
        mean = MixtureMean(get_likelihood(config.likelihood).num_components, config.image_shape[-1], dtype="float32")
    return keras.Model(z, mean(plain_decoder(config)(z)))


def build(model, variant, config=CONFIGS["digits"]):
    """`(model, compile keyword arguments)`: kerasgen's model or its plain twin, same optimizer."""
    if model == "vae":
        return (kerasgen_vae(config) if variant == "kerasgen" else PlainVAE(config)), \
            {"optimizer": keras.optimizers.Adam(1e-3)}
    if model == "gan":
        optimizers = {f"{n}_optimizer": keras.optimizers.Adam(2e-4, beta_1=0.5) for n in "dg"}
        if variant == "kerasgen":
            return GAN.from_vae(kerasgen_vae(config), seed=0), optimizers
        return PlainGAN(plain_generator(config), plain_discriminator(config)), optimizers
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    network = (Classifier(config.image_shape, 10, config.num_filters, seed=0) if variant == "kerasgen"
               else plain_classifier(config))
    return network, {"optimizer": keras.optimizers.Adam(1e-3), "loss": loss}


# --- Measurements ------------------------------------------------------------------------------


class StepTimer(keras.callbacks.Callback):
    """Wall time from the end of `fit`'s first step (the warm-up) to the end of its last."""

    def __init__(self, last_step):
        super().__init__()
        self.last_step, self.times = last_step, []

    def on_train_batch_end(self, batch, logs=None):
        if batch in (0, self.last_step):
            np.asarray(next(iter(logs.values())))  # waits for the step (asynchronous on a GPU)
            self.times.append(time.perf_counter())


def images_per_second(model, dataset, steps, batch_size):
    """`steps` timed training steps after one warm-up step, through `fit`."""
    timer = StepTimer(steps)
    model.fit(dataset, steps_per_epoch=steps + 1, epochs=1, verbose=0, shuffle=False, callbacks=[timer])
    return steps * batch_size / (timer.times[1] - timer.times[0])


def train_step_flops(model, batch_size, image_shape=IMAGE_SHAPE):
    """FLOPs of one `train_step` from TF's profiler on its graph, traced for this batch shape."""
    spec = (tf.TensorSpec((batch_size, *image_shape), tf.float32), tf.TensorSpec((batch_size,), tf.int32))
    graph = tf.function(model.train_step).get_concrete_function(spec).graph
    builder = tf.compat.v1.profiler.ProfileOptionBuilder
    options = builder(builder.float_operation()).with_empty_output().build()
    return tf.compat.v1.profiler.profile(graph=graph, options=options).total_float_ops


_bursts = {}


def matmul_peak(dtype, seconds=0.5):
    """GFLOP/s of ~`seconds` of chained square matmuls: the machine's level right now."""
    n, chain = (4096, 32) if tf.config.list_physical_devices("GPU") else (1024, 8)
    if dtype not in _bursts:
        # Orthogonal, so a chain of products neither grows nor shrinks (float16 stays finite).
        q = tf.cast(tf.linalg.qr(tf.random.stateless_normal((n, n), (0, 0)))[0], dtype)

        @tf.function
        def burst(x):
            for _ in tf.range(chain):
                x = tf.matmul(x, q)
            return tf.reduce_sum(tf.cast(x, tf.float32))

        _bursts[dtype] = (burst, q)
        burst(q).numpy()  # trace
    burst, q = _bursts[dtype]
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        burst(q).numpy()
        calls += 1
    return 2 * n**3 * chain * calls / (time.perf_counter() - start) / 1e9


def pipeline_images_per_second(dataset, batch_size, images=20480):
    """Batches drawn from the pipeline alone, after one warm-up batch."""
    iterator = iter(dataset)
    next(iterator)
    batches, start = max(4, images // batch_size), time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch_size / (time.perf_counter() - start)


def real_pipeline(source, batch_size, config=CONFIGS["digits"], stream=False):
    splits = load_dataset(source, batch_size=batch_size, binarize=config.binarize, image_size=config.image_size,
                          stream=stream)
    if splits.image_shape != config.image_shape:
        raise ValueError(f"--config {config.name} measures {config.image_shape} images; --data {source} gives "
                         f"{splits.image_shape}. Received: --data {source}")
    # Full batches only: an epoch's ragged last batch would retrace the step.
    return splits.train.repeat().filter(lambda x, y: tf.shape(x)[0] == batch_size), splits


def synthetic_images(config, batch_size, seed=(1, 2)):
    """A batch of seeded random images for `config`: binary pixels for digits, 8-bit levels for colour."""
    uniform = tf.random.stateless_uniform((batch_size, *config.image_shape), seed)
    if config.binarize == "dynamic":
        return tf.cast(uniform < 0.3, tf.float32)
    return tf.round(uniform * (NUM_LEVELS - 1)) / (NUM_LEVELS - 1)


def device_info():
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor() or "unknown CPU")
    info = {"cpu": cpu, "cpu_cores": os.cpu_count(), "cpu_cores_usable": len(os.sched_getaffinity(0))}
    gpus = tf.config.list_physical_devices("GPU")
    info["gpus"] = [tf.config.experimental.get_device_details(g).get("device_name", g.name) for g in gpus]
    info["name"] = info["gpus"][0] + (f" x{len(gpus)}" if len(gpus) > 1 else "") if gpus else \
        f"{cpu}, {info['cpu_cores_usable']} cores (CPU only)"
    return info


def median(values):
    return float(statistics.median(values)) if values else float("nan")


def print_table(title, headers, rows):
    rows = [[f"{v:,.1f}" if isinstance(v, float) and abs(v) >= 100 else f"{v:.3g}" if isinstance(v, float)
             else str(v) for v in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    print(f"\n{title}\n" + "  ".join(h.rjust(w) for h, w in zip(headers, widths)))
    for row in rows:
        print("  ".join(v.rjust(w) for v, w in zip(row, widths)))


# --- Section 3: tf.distribute, in its own process ------------------------------------------------


def distributed_worker(args, out_path):
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        devices = [f"/gpu:{i}" for i in range(min(2, len(gpus)))]
    else:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        devices = ["/cpu:0", "/cpu:1"]
    # One strategy per device count, shared by the models: strategies built one per model reuse the
    # same collective keys, and a second model's all-reduce then fails with a shape mismatch.
    strategies = {n: tf.distribute.MirroredStrategy(devices[:n]) for n in range(1, len(devices) + 1)}
    batch_size = args.batch_sizes[len(args.batch_sizes) // 2]
    images = synthetic_images(args.setup, batch_size)
    dataset = tf.data.Dataset.from_tensors((images, tf.zeros((batch_size,), tf.int32))).repeat()
    runs, results = {}, {"batch_size": batch_size, "devices": devices, "rates": {}, "errors": {}}
    for model in args.models:
        for count, strategy in strategies.items():
            key = f"{model} x{count}"
            try:
                with strategy.scope():
                    network, compile_kwargs = build(model, "kerasgen", args.setup)
                    network.compile(jit_compile=False, **compile_kwargs)
                images_per_second(network, dataset, 1, batch_size)
                runs[key] = network
            except Exception as error:  # reported, not fatal: the other models still run
                results["errors"][key] = error_line(error)
    for round_index in range(args.rounds):
        for key in list(runs) if round_index % 2 == 0 else list(runs)[::-1]:
            try:
                results["rates"].setdefault(key, []).append(images_per_second(runs[key], dataset, args.steps, batch_size))
            except Exception as error:
                results["errors"][key] = error_line(error)
                del runs[key]
    with open(out_path, "w") as file:
        json.dump(results, file)


def measure_distributed(args, device):
    rounds = max(2, args.rounds // 2)
    with tempfile.TemporaryDirectory() as folder:
        out_path = os.path.join(folder, "distributed.json")
        command = [sys.executable, __file__, "--distributed-worker", out_path, "--config", args.config,
                   "--models", ",".join(args.models),
                   "--batch-sizes", ",".join(map(str, args.batch_sizes)), "--steps", str(args.steps),
                   "--rounds", str(rounds)]
        if args.mixed_precision:
            command += ["--mixed-precision", args.mixed_precision]
        completed = subprocess.run(command)
        results = {"rates": {}, "errors": {"subprocess": f"exit status {completed.returncode}"}}
        if completed.returncode == 0 and os.path.exists(out_path):
            with open(out_path) as file:
                results = json.load(file)
    results["rounds"] = rounds
    results["medians"] = {key: median(values) for key, values in results["rates"].items()}
    results["note"] = (
        "one GPU: MirroredStrategy measured on 1 device only" if len(device["gpus"]) == 1 else
        "1 and 2 GPUs" if device["gpus"] else
        "the 2 logical CPU devices share the same physical cores, so 1 vs 2 devices says little about speed: "
        "it shows that the steps run under MirroredStrategy, and its overhead")
    print_table(f"3. tf.distribute.MirroredStrategy: kerasgen steps, global batch {results.get('batch_size')}, XLA off, "
                f"{rounds} rounds", ["model x devices", "median img/s", "rounds"],
                [[key, value, ", ".join(f"{r:,.0f}" for r in results["rates"][key])]
                 for key, value in results["medians"].items()])
    for key, error in results["errors"].items():
        print(f"  {key}: failed: {error}")
    print(f"note: {results['note']}")
    return results


# --- Sections 1 and 2 ------------------------------------------------------------------------------


def error_line(error):
    return f"{type(error).__name__}: {str(error).strip().splitlines()[0][:300]}"


def prepare(args, cached):
    """Builds, compiles and warms every configuration (the first step traces and compiles)."""
    runs, skipped, flops, first_step = {}, {}, {}, {}
    for model in args.models:
        for batch_size in args.batch_sizes:
            for xla in args.xla:
                for variant in VARIANTS:
                    key = (model, batch_size, xla, variant)
                    try:
                        network, compile_kwargs = build(model, variant, args.setup)
                        network.compile(jit_compile=xla, **compile_kwargs)
                        if xla and not network.jit_compile:
                            unsupported = sorted({type(layer).__name__ for layer in network._flatten_layers()
                                                  if not layer.supports_jit})
                            skipped[key] = (f"Keras turns XLA off for this model (layers without XLA support: "
                                            f"{', '.join(unsupported)}), so 'on' would measure 'off' again")
                            continue
                        start = time.perf_counter()
                        network.fit(cached[batch_size], steps_per_epoch=1, verbose=0, shuffle=False)
                        first_step[key] = time.perf_counter() - start
                        if (model, batch_size, variant) not in flops:
                            flops[model, batch_size, variant] = (
                                train_step_flops(network, batch_size, args.setup.image_shape) / batch_size)
                        runs[key] = network
                    except Exception as error:  # reported, not fatal: e.g. an op XLA cannot compile
                        skipped[key] = f"failed: {error_line(error)}"
    for key, reason in skipped.items():
        print(f"  skipped {'/'.join(map(str, key))}: {reason}")
    return runs, skipped, flops, first_step


def measure_compute(args, runs, flops, first_step, cached, dtype, started):
    rates, peaks = {key: [] for key in runs}, []
    for round_index in range(args.rounds):
        before = matmul_peak(dtype)
        # Interleaved, and every other round in reverse, so no configuration always runs first.
        for key in list(runs) if round_index % 2 == 0 else list(runs)[::-1]:
            rates[key].append(images_per_second(runs[key], cached[key[1]], args.steps, key[1]))
        peaks.append((before, matmul_peak(dtype)))
        print(f"round {round_index + 1}/{args.rounds}: peak {before:.0f} -> {peaks[-1][1]:.0f} GFLOP/s "
              f"({time.time() - started:.0f} s)")
    compute = []
    for (model, batch_size, xla, variant), values in rates.items():
        per_image = flops[model, batch_size, variant]
        gflops = [rate * per_image / 1e9 for rate in values]
        fractions = [g / ((b + a) / 2) for g, (b, a) in zip(gflops, peaks)]
        compute.append({
            "model": model, "batch_size": batch_size, "xla": xla, "variant": variant, "flops_per_image": per_image,
            "first_step_s": first_step[model, batch_size, xla, variant], "images_per_second": values,
            "gflops": gflops, "fraction_of_peak": fractions, "median_images_per_second": median(values),
            "median_gflops": median(gflops), "median_fraction_of_peak": median(fractions),
        })
    print_table(
        "1. Compute, fed one cached batch. Per round: images/s (achieved GFLOP/s / mean of the peaks before and after)",
        ["model", "batch", "XLA", "variant", "MFLOP/img", "1st step s", *[f"round {i + 1}" for i in range(args.rounds)],
         "median img/s", "GFLOP/s", "of peak"],
        [[r["model"], r["batch_size"], on_off(r["xla"]), r["variant"], r["flops_per_image"] / 1e6, r["first_step_s"],
          *[f"{v:,.0f} ({f:.0%})" for v, f in zip(r["images_per_second"], r["fraction_of_peak"])],
          r["median_images_per_second"], r["median_gflops"], f"{r['median_fraction_of_peak']:.1%}"] for r in compute])
    print(f"{dtype} matmul peak before/after each round, GFLOP/s: " + ", ".join(f"{b:.0f}/{a:.0f}" for b, a in peaks))
    return compute, peaks


def measure_pipeline(args, runs, compute, pipelines, cached):
    """Each model's fastest kerasgen configuration fed the cached batch and the real pipelines; the pipelines alone.

    `pipelines` maps a feed (`"pipeline"`: in memory; `"stream"`: decoded from the files every
    epoch) to `{batch_size: (dataset, splits)}`.
    """
    fastest = {}
    for r in compute:
        if r["variant"] == "kerasgen" and r["median_images_per_second"] > fastest.get(r["model"], (0,))[0]:
            fastest[r["model"]] = (r["median_images_per_second"], r["batch_size"], r["xla"])
    rounds = max(2, args.rounds // 2)
    kinds = list(pipelines)
    feeds = {model: {feed: [] for feed in ("cached", *kinds)} for model in fastest}
    alone = {kind: {b: [] for b in args.batch_sizes} for kind in kinds}
    for round_index in range(rounds):
        for kind in kinds:
            for batch_size in args.batch_sizes:
                alone[kind][batch_size].append(
                    pipeline_images_per_second(pipelines[kind][batch_size][0], batch_size, args.pipeline_images))
        for model in list(fastest) if round_index % 2 == 0 else list(fastest)[::-1]:
            _, batch_size, xla = fastest[model]
            for feed in ("cached", *kinds):
                dataset = cached[batch_size] if feed == "cached" else pipelines[feed][batch_size][0]
                rate = images_per_second(runs[model, batch_size, xla, "kerasgen"], dataset, args.steps, batch_size)
                feeds[model][feed].append(rate)
    splits = pipelines["pipeline"][args.batch_sizes[0]][1]
    # The stream's figures carry a "stream_" prefix; the in-memory pipeline's keep the names they had.
    prefix = {"pipeline": "", "stream": "stream_"}
    result = {"source": args.data, "num_train": splits.num_train, "binarize": splits.binarize, "rounds": rounds,
              "image_size": args.setup.image_size, "feeds": kinds, "fed": [], "headroom": []}
    for kind in kinds:
        result[f"alone{'_' + kind if kind != 'pipeline' else ''}"] = {
            b: {"images_per_second": v, "median": median(v)} for b, v in alone[kind].items()}
    for model, (_, batch_size, xla) in fastest.items():
        entry = {"model": model, "batch_size": batch_size, "xla": xla, **feeds[model],
                 "median_cached": median(feeds[model]["cached"])}
        for kind in kinds:
            ratios = [p / c for p, c in zip(feeds[model][kind], feeds[model]["cached"])]
            entry.update({f"median_{kind}": median(feeds[model][kind]), f"{prefix[kind]}median_ratio": median(ratios),
                          f"{prefix[kind]}ratios": ratios})
        result["fed"].append(entry)
    for r in compute:  # the pipelines alone against every kerasgen step of section 1
        if r["variant"] == "kerasgen":
            result["headroom"].append({
                "model": r["model"], "batch_size": r["batch_size"], "xla": r["xla"],
                **{f"{prefix[kind]}headroom": median(alone[kind][r["batch_size"]]) / r["median_images_per_second"]
                   for kind in kinds}})
    names = {"pipeline": "pipeline" if len(kinds) == 1 else "in-memory", "stream": "streamed"}
    print_table(
        f"2. Input pipeline: load_dataset({args.data!r}, binarize={splits.binarize!r}"
        f"{f', image_size={args.setup.image_size}' if args.setup.image_size else ''}), {splits.num_train:,} training "
        f"images{'; in memory and stream=True (every file decoded every epoch)' if 'stream' in kinds else ''}; "
        f"each model's fastest kerasgen step; {rounds} rounds",
        ["model", "batch", "XLA", "cached img/s",
         *[h for kind in kinds for h in (f"{names[kind]} img/s", f"{names[kind]}/cached", "per round")]],
        [[f["model"], f["batch_size"], on_off(f["xla"]), f["median_cached"],
          *[v for kind in kinds for v in (f[f"median_{kind}"], f"{f[prefix[kind] + 'median_ratio']:.3f}",
                                          ", ".join(f"{x:.2f}" for x in f[prefix[kind] + "ratios"]))]]
         for f in result["fed"]])
    for kind in kinds:
        alone_key = f"alone{'_' + kind if kind != 'pipeline' else ''}"
        print_table(f"   the {names[kind] + ' ' if len(kinds) > 1 else ''}pipeline alone (images/s) and its headroom over "
                    f"each kerasgen step "
                    f"(pipeline alone / step)",
                    ["batch", "pipeline alone img/s", *[f"{m} headroom" for m in args.models]],
                    [[b, result[alone_key][b]["median"],
                      *[", ".join(f"{h[prefix[kind] + 'headroom']:.0f}x" for h in result["headroom"]
                                  if h["model"] == m and h["batch_size"] == b) for m in args.models]]
                     for b in args.batch_sizes])
    verdicts = []
    for kind in kinds:
        least_headroom = min(h[f"{prefix[kind]}headroom"] for h in result["headroom"])
        ratios = [r for f in result["fed"] for r in f[f"{prefix[kind]}ratios"]]
        # The pipeline runs beside the step (prefetched), so it can bound the step only if it cannot
        # deliver batches fast enough alone, or if its CPU work slows the step in every measurement.
        verdict = ("PIPELINE-BOUND" if least_headroom < 2 else
                   "THE PIPELINE SLOWS THE STEPS" if max(ratios) < 0.95 else "compute-bound")
        verdicts.append(
            f"{verdict}{f' ({names[kind]})' if len(kinds) > 1 else ''}: the pipeline alone delivers at least "
            f"{least_headroom:,.0f}x the images/s of any kerasgen step (its own work is at most "
            f"{1 / least_headroom:.1%} of a step's time); fed by it, the steps ran at {median(ratios):.1%} of their "
            f"cached-batch speed (median; per round and model {min(ratios):.0%} to {max(ratios):.0%}).")
    result["verdict"] = " ".join(verdicts) + " Bound would be: headroom < 2x, or every measurement < 95%."
    print(result["verdict"])
    return result


def measure_steps_per_execution(args, cached, values=(1, 8), steps=16):
    """Each kerasgen step at the smallest batch, XLA off, run 1 and 8 steps per compiled call."""
    batch_size = min(args.batch_sizes)
    runs = {}
    for model in args.models:
        for per_call in values:
            network, compile_kwargs = build(model, "kerasgen", args.setup)
            network.compile(steps_per_execution=per_call, **compile_kwargs)
            network.fit(cached[batch_size], steps_per_epoch=per_call, verbose=0, shuffle=False)  # traces
            runs[model, per_call] = network
    rates = {key: [] for key in runs}
    for round_index in range(args.rounds):
        for key in list(runs) if round_index % 2 == 0 else list(runs)[::-1]:
            start = time.perf_counter()
            runs[key].fit(cached[batch_size], steps_per_epoch=steps, verbose=0, shuffle=False)
            rates[key].append(steps * batch_size / (time.perf_counter() - start))
    result = []
    for model in args.models:
        one, many = rates[model, values[0]], rates[model, values[1]]
        speedup = median([b / a for a, b in zip(one, many)])
        verdict = "helps" if speedup > 1.05 else "hurts" if speedup < 0.95 else "neutral (within 5%)"
        result.append({"model": model, "batch_size": batch_size, "steps_per_execution": list(values),
                       "images_per_second": {str(values[0]): one, str(values[1]): many}, "speedup": speedup,
                       "verdict": verdict})
    print_table(
        f"4. Steps per execution: {steps} steps per fit call at batch {batch_size}, XLA off, {args.rounds} rounds",
        ["model", f"{values[0]} per call img/s", f"{values[1]} per call img/s", f"{values[1]}/{values[0]}", "verdict"],
        [[r["model"], median(r["images_per_second"][str(values[0])]), median(r["images_per_second"][str(values[1])]),
          f"{r['speedup']:.3f}", r["verdict"]] for r in result])
    return result


def on_off(xla):
    return "on" if xla else "off"


def summarize(args, compute, skipped, device):
    by_key = {(r["model"], r["batch_size"], r["xla"], r["variant"]): r for r in compute}
    summary = {"kerasgen_vs_plain": [], "xla": []}
    for model in args.models:
        for batch_size in args.batch_sizes:
            for xla in args.xla:
                ours, plain = by_key.get((model, batch_size, xla, "kerasgen")), by_key.get((model, batch_size, xla, "plain"))
                if ours and plain:
                    # Ratios per round (the two ran back to back), then their median: robust to the machine's level.
                    summary["kerasgen_vs_plain"].append({
                        "model": model, "batch_size": batch_size, "xla": xla,
                        "kerasgen_gflops": ours["median_gflops"], "plain_gflops": plain["median_gflops"],
                        "gflops_ratio": median([a / b for a, b in zip(ours["gflops"], plain["gflops"])]),
                        "images_per_second_ratio": median([a / b for a, b in zip(ours["images_per_second"],
                                                                                plain["images_per_second"])]),
                        "flops_ratio": ours["flops_per_image"] / plain["flops_per_image"]})
            for variant in VARIANTS:
                on, off = by_key.get((model, batch_size, True, variant)), by_key.get((model, batch_size, False, variant))
                if on and off:
                    speedup = median([a / b for a, b in zip(on["images_per_second"], off["images_per_second"])])
                    verdict = "helps" if speedup > 1.05 else "hurts" if speedup < 0.95 else "neutral (within 5%)"
                    summary["xla"].append({"model": model, "variant": variant, "batch_size": batch_size,
                                           "speedup": speedup, "verdict": verdict})
    print_table("Summary: kerasgen vs plain, median GFLOP/s (ratios: medians of the per-round ratios, kerasgen/plain)",
                ["model", "batch", "XLA", "kerasgen GFLOP/s", "plain GFLOP/s", "GFLOP/s ratio", "img/s ratio",
                 "FLOP/img ratio"],
                [[s["model"], s["batch_size"], on_off(s["xla"]), s["kerasgen_gflops"], s["plain_gflops"],
                  f"{s['gflops_ratio']:.3f}", f"{s['images_per_second_ratio']:.3f}", f"{s['flops_ratio']:.3f}"]
                 for s in summary["kerasgen_vs_plain"]])
    ours = [s for s in summary["xla"] if s["variant"] == "kerasgen"]
    if ours:
        print_table("Summary: XLA on / off, images/s (median of per-round ratios; > 1.05 helps, < 0.95 hurts)",
                    ["model", "variant", "batch", "on/off", "verdict"],
                    [[s["model"], s["variant"], s["batch_size"], f"{s['speedup']:.3f}", s["verdict"]]
                     for s in summary["xla"]])
        geometric = float(np.exp(np.mean(np.log([s["speedup"] for s in ours]))))
        helps = [f"{s['model']}@{s['batch_size']}" for s in ours if s["verdict"] == "helps"]
        hurts = [f"{s['model']}@{s['batch_size']}" for s in ours if s["verdict"] == "hurts"]
        default = "on" if geometric > 1.05 and not hurts else "off" if geometric < 0.95 or hurts else "either"
        summary["jit_compile"] = {"device": device["name"], "geometric_mean_speedup": geometric, "helps": helps,
                                  "hurts": hurts, "suggested_default": default}
        print(f"XLA for kerasgen's steps on {device['name']}: geometric mean on/off {geometric:.3f}; helps at "
              f"{', '.join(helps) or 'none'}; hurts at {', '.join(hurts) or 'none'} -> suggested --jit-compile "
              f"default on this device: {default} (per model where it helps, if the flag is per model)")
    no_xla = sorted({key[0] for key, reason in skipped.items() if key[2] and reason.startswith("Keras turns XLA off")})
    if no_xla:
        summary["xla_not_applied"] = no_xla
        print(f"XLA does not apply to: {', '.join(no_xla)} (Keras turns jit_compile off; see 'skipped' above)")
    return summary


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=tuple(CONFIGS), default="digits",
                        help="images and networks: digits (28x28x1), cifar32 (32x32x3), cifar64 (64x64x3)")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per measurement, after 1 warm-up step")
    parser.add_argument("--batch-sizes", default=None, help="default: 64,256,1024 (64 with --quick)")
    parser.add_argument("--models", default=None, help="default: the config's (vae,gan,classifier for digits; vae,gan)")
    parser.add_argument("--xla", default="on,off", help="jit_compile settings to measure: on, off or on,off")
    parser.add_argument("--mixed-precision", choices=("float16", "bfloat16"), default=None)
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help=f"sections to run, compute always among them: {','.join(SECTIONS)}")
    parser.add_argument("--data", default=None, help="load_dataset source of the real pipeline (default: the config's)")
    parser.add_argument("--quick", action="store_true", help="tiny settings: checks the script end to end")
    parser.add_argument("--out", default=None, help="default: benchmarks/results/throughput/throughput[_CONFIG].json")
    parser.add_argument("--distributed-worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.setup = CONFIGS[args.config]
    args.data = args.data or args.setup.data
    args.out = args.out or args.setup.out
    args.models = args.models or ",".join(args.setup.models)
    # Images drawn from a pipeline alone per measurement (fewer with --quick).
    args.pipeline_images = 20480
    if args.quick:
        args.rounds, args.steps, args.pipeline_images = 2, 2, 2048
    args.batch_sizes = [int(b) for b in (args.batch_sizes or ("64" if args.quick else "64,256,1024")).split(",")]
    args.models = args.models.split(",")
    args.sections = args.sections.split(",")
    args.xla = [{"on": True, "off": False}[x] for x in args.xla.split(",")]
    if set(args.models) - set(args.setup.models) or args.rounds < 1 or args.steps < 1 or min(args.batch_sizes) < 1:
        parser.error(f"--models takes {','.join(args.setup.models)} with --config {args.config}; --rounds, --steps and "
                     f"batch sizes must be positive. Received: --models {','.join(args.models)}")
    if set(args.sections) - set(SECTIONS) or "compute" not in args.sections:
        parser.error(f"--sections takes {','.join(SECTIONS)}, compute among them (the others read its results). "
                     f"Received: --sections {','.join(args.sections)}")
    if args.mixed_precision:
        keras.config.set_dtype_policy(f"mixed_{args.mixed_precision}")
    return args


def main():
    args = parse_args()
    for gpu in tf.config.list_physical_devices("GPU"):
        # Take GPU memory as needed, so that section 3's subprocess finds some left.
        tf.config.experimental.set_memory_growth(gpu, True)
    if args.distributed_worker:
        return distributed_worker(args, args.distributed_worker)
    started, load_at_start = time.time(), os.getloadavg()[0]
    device = device_info()
    setup, data_note = args.setup, None
    if args.data == DEFAULT_DATA and not os.path.exists(args.data):
        print(f"note: {DEFAULT_DATA} is missing; the real pipeline reads the bundled mnist-5k instead")
        args.data = "mnist-5k"
    elif args.data == setup.data and not os.path.exists(args.data):
        # No colour data ships with kerasgen: the steps are fed seeded random 8-bit images instead.
        data_note = (f"{args.data} is missing: the compute sections are fed seeded random 8-bit {setup.image_shape} "
                     f"images and the input-pipeline section is skipped (give --data a JPEG folder to measure it)")
        print(f"note: {data_note}")
    dtype = keras.config.dtype_policy().compute_dtype
    print(f"kerasgen train-step throughput on {device['name']} (CPU {device['cpu']}, {device['cpu_cores_usable']} of "
          f"{device['cpu_cores']} cores usable; load average {load_at_start:.2f} at the start)\n"
          f"TensorFlow {tf.__version__}, Keras {keras.__version__}, TFP {tfp.__version__}; dtype policy "
          f"{keras.config.dtype_policy().name}; {args.rounds} rounds x {args.steps} timed steps after 1 warm-up step; "
          f"batches {args.batch_sizes}; XLA {'/'.join(map(on_off, args.xla))}; peak: {dtype} matmul burst")
    print(f"--config {setup.name}: {'x'.join(map(str, setup.image_shape))} images; VAE {setup.architecture} "
          f"{setup.num_filters}, hidden {setup.hidden_dim}, latent {setup.latent_dim} ({setup.latent_layout}), "
          f"likelihood {setup.likelihood}; "
          f"models {', '.join(args.models)}")

    pipelines = {}
    if data_note is None:
        pipelines["pipeline"] = {b: real_pipeline(args.data, b, setup) for b in args.batch_sizes}
        if setup.stream and "pipeline" in args.sections:
            pipelines["stream"] = {b: real_pipeline(args.data, b, setup, stream=True) for b in args.batch_sizes}
        cached = {b: pipelines["pipeline"][b][0].take(1).cache().repeat() for b in args.batch_sizes}
    else:
        cached = {b: tf.data.Dataset.from_tensors((synthetic_images(setup, b), tf.zeros((b,), tf.int32))).repeat()
                  for b in args.batch_sizes}
    runs, skipped, flops, first_step = prepare(args, cached)
    print(f"built, compiled and warmed {len(runs)} configurations in {time.time() - started:.0f} s")
    compute, peaks = measure_compute(args, runs, flops, first_step, cached, dtype, started)
    pipeline = distributed = steps_per_execution = None
    if "pipeline" in args.sections:
        pipeline = measure_pipeline(args, runs, compute, pipelines, cached) if pipelines else {"skipped": data_note}
    if "distributed" in args.sections:
        distributed = measure_distributed(args, device)
    if "steps_per_execution" in args.sections:
        steps_per_execution = measure_steps_per_execution(args, cached)
    summary = summarize(args, compute, skipped, device)
    if pipeline is not None:
        print(f"Pipeline: {pipeline.get('verdict', pipeline.get('skipped'))}")
    elapsed, load_at_end = time.time() - started, os.getloadavg()[0]
    print(f"took {elapsed / 60:.1f} min; load average {load_at_start:.2f} at the start, {load_at_end:.2f} at the end")

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as file:
        json.dump({
            "device": device, "versions": {"tensorflow": tf.__version__, "keras": keras.__version__,
                                           "tensorflow_probability": tfp.__version__, "python": platform.python_version()},
            "settings": {**{k: v for k, v in vars(args).items() if k not in ("distributed_worker", "setup")},
                         "dtype_policy": keras.config.dtype_policy().name, "peak_dtype": dtype},
            "config": dataclasses.asdict(setup),
            "flops_counting": " ".join(__doc__.split("FLOPs: ", 1)[1].split("\n\n")[0].split()),
            "peaks_gflops_before_after": peaks, "compute": compute,
            "skipped": {"/".join(map(str, k)): v for k, v in skipped.items()},
            "pipeline": pipeline, "steps_per_execution": steps_per_execution, "distributed": distributed,
            "summary": summary,
            "elapsed_s": elapsed, "load_average_start_end": [load_at_start, load_at_end],
        }, file, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
