"""The VAE trained with aggressive inference-network updates (He et al., ICLR 2019) against posterior collapse.

He et al. ("Lagging inference networks and posterior collapse in variational autoencoders") find
that early in training q(z|x) lags behind the true posterior, so the decoder learns to ignore z.
While *aggressive*, each decoder update is preceded by encoder-only updates on fresh batches
until the encoder's loss stops improving; once I(x; z) on held-out images stops rising the run
leaves the aggressive phase for good and trains both parts jointly, as a plain VAE.

The inner loop's stopping rule is the one of He et al.'s code (`image.py` of
github.com/jxhe/vae-lagging-encoder): the encoder's loss is averaged over windows of `WINDOW`
(10) steps, and the loop breaks at the end of a window whose mean is higher than the previous
window's (`if burn_pre_loss - burn_cur_loss < 0: break`: an equal mean goes on), or when
`MAX_ENCODER_STEPS` (99) steps are done (`while ... sub_iter < 100`, counting from 1). Three
details differ: their first inner step takes the step's own batch and the later ones random
batches of the training set, where every inner step here takes the next batch of
`set_encoder_data`'s dataset; their window mean is over the window's examples, here the mean of
its steps' batch means (the same for equal batches; weighted means with `sample_weight`); their
first window is compared with 1e4 nats, here with +∞, so that no loss stops the first window.
The end of the phase is `kerasgen.callbacks.AggressivePhase`'s, whose docstring compares it
with theirs.
"""

import keras
import tensorflow as tf
from keras import ops

from kerasgen import distribute, validate
from kerasgen.models.adversarial import apply_gradients, compile_config_with_optimizers, compile_optimizers
from kerasgen.models.vae import VAE, _image_weights, _total_weight

# The rule of He et al.'s image.py (module docstring): the encoder's loss is averaged over
# windows of WINDOW steps and the inner loop stops at the end of a window whose mean is higher
# than the previous one's, or after MAX_ENCODER_STEPS steps.
WINDOW = 10
MAX_ENCODER_STEPS = 99


def window_rule(count, previous_mean, window_sum, loss, max_steps=MAX_ENCODER_STEPS):
    """One inner step of the stopping rule: `(count, previous_mean, window_sum, stop)` after `loss`.

    Args:
        count: int32 scalar, encoder steps taken before this one.
        previous_mean: float32 scalar, the last finished window's mean loss (inf before the first).
        window_sum: float32 scalar, the loss summed over the current window so far.
        loss: float32 scalar, this step's encoder loss.
        max_steps: int >= 1, the cap. Defaults to He et al.'s `MAX_ENCODER_STEPS` (99).

    Returns:
        The updated state; `stop` is true at the end of a window whose mean is higher than the
        previous window's (strictly, as He et al.'s `burn_pre_loss - burn_cur_loss < 0`), and
        after `max_steps` steps, wherever that falls in a window.
    """
    count = count + 1
    window_sum = window_sum + loss
    window_end = ops.equal(count % WINDOW, 0)
    mean = window_sum / WINDOW
    stop = ops.logical_or(ops.logical_and(window_end, mean > previous_mean), count >= max_steps)
    previous_mean = ops.where(window_end, mean, previous_mean)
    window_sum = ops.where(window_end, ops.zeros_like(window_sum), window_sum)
    return count, previous_mean, window_sum, stop


@keras.saving.register_keras_serializable(package="kerasgen")
class OnModelSteps(keras.optimizers.schedules.LearningRateSchedule):
    """A learning-rate schedule read at the model's training step rather than at its optimizer's own.

    The encoder optimizer of an `AggressiveVAE` takes up to `MAX_ENCODER_STEPS` steps per batch
    while aggressive; its schedule follows the decoder optimizer's step count (one per batch), so
    both parts decay together. `AggressiveVAE.compile` binds it to that count.

    Args:
        schedule: a `LearningRateSchedule`.
    """

    def __init__(self, schedule):
        self.schedule = schedule
        self.steps = None

    def __call__(self, step):
        return self.schedule(step if self.steps is None else self.steps)

    def get_config(self):
        return {"schedule": keras.saving.serialize_keras_object(self.schedule)}

    @classmethod
    def from_config(cls, config):
        return cls(keras.saving.deserialize_keras_object(config["schedule"]))


@keras.saving.register_keras_serializable(package="kerasgen")
class AggressiveVAE(VAE):
    """A `VAE` with aggressive inference-network training (He et al. 2019) until I(x; z) stops rising.

    Each training step, while the model is in its aggressive phase (`aggressive_phase` is 1):

    1. the encoder alone is updated on fresh batches from `set_encoder_data`'s data, in a
       `tf.while_loop` inside the compiled step, until the mean loss of a window of `WINDOW` (10)
       steps is higher than the previous window's, or after `max_encoder_steps` (99) steps, as
       He et al.'s code stops it (module docstring);
    2. the decoder alone takes one step on the step's own batch.

    Out of the aggressive phase, both parts take one step together, as in a `VAE`. The encoder's
    loss is the model's objective (β, warm-up, cycles, free bits and the IWAE bound included).
    The phase ends for good when `AggressivePhase` (a callback) sees `patience` epochs in a row
    without a new best I(x; z) on held-out images (its docstring compares that with He et al.'s rule).

    The phase and the callback's best I(x; z) and epochs without it are non-trainable weights,
    saved in the `.keras` file and the checkpoint, so a resumed run continues in its phase.

    Two optimizers, taken by `compile`: `optimizer` moves the decoder (and the PixelCNN) and its
    step count is the model's (KL warm-up and cycles read it); `encoder_optimizer` moves the
    encoder. Under `"mixed_float16"` each has its own loss scale. Logs add `aggressive` (1 while
    aggressive) and `encoder_steps` (the epoch's mean encoder-only steps per batch).

    Not supported: `jit_compile=True` (the inner loop reads a `tf.data` iterator, which XLA cannot
    compile) and distribution strategies with more than one replica (refused in `compile`).

    Args:
        aggressive: bool, start in the aggressive phase. Defaults to True.
        max_encoder_steps: int >= 1, the cap on the encoder-only steps per batch. Defaults to
            He et al.'s 99. The window rule cannot stop before 2 windows (20 steps), so a cap of
            20 or less fixes the count, and with it an aggressive epoch's cost. (On a 4-layer
            PixelCNN probe the rule took 57 steps per batch and made an epoch 14× as long as a
            plain one: an encoder-only step cost about a quarter of a joint step.)
        **kwargs: the `VAE`'s arguments.

    Example:

        vae = AggressiveVAE(image_shape=(28, 28, 1), latent_dim=16)
        vae.compile(optimizer=keras.optimizers.Adam(1e-3))
        vae.set_encoder_data(splits.train)
        vae.fit(splits.train, epochs=10, callbacks=[LatentDiagnostics(images), AggressivePhase()])
    """

    optimizer_names = ("optimizer", "encoder_optimizer")

    def __init__(self, aggressive=True, max_encoder_steps=MAX_ENCODER_STEPS, **kwargs):
        super().__init__(**kwargs)
        validate.boolean("aggressive", aggressive)
        validate.positive_int("max_encoder_steps", max_encoder_steps)
        self.aggressive = aggressive
        self.max_encoder_steps = max_encoder_steps
        self.aggressive_phase = self.add_weight(
            shape=(), dtype="int32", trainable=False, name="aggressive_phase",
            initializer=keras.initializers.Constant(int(aggressive)),
        )
        # The `AggressivePhase` callback's state, here so that the checkpoint keeps it.
        self.best_mutual_information = self.add_weight(
            shape=(), dtype="float32", trainable=False, name="best_mutual_information",
            initializer=keras.initializers.Constant(float("-inf")),
        )
        self.epochs_without_gain = self.add_weight(
            shape=(), dtype="int32", trainable=False, name="epochs_without_gain", initializer="zeros"
        )
        self.encoder_steps_tracker = keras.metrics.Mean(name="encoder_steps")
        self._encoder_batches = None

    def set_encoder_data(self, dataset):
        """Gives the inner loop its fresh batches: an infinite iterator over `dataset` (a `tf.data.Dataset`).

        Call it before `fit` (with the training data, shuffled); the dataset is repeated.
        """
        if not isinstance(dataset, tf.data.Dataset):
            raise ValueError(f"set_encoder_data takes a tf.data.Dataset. Received: {type(dataset).__name__}")
        # A plain holder: the iterator is not the model's state (not saved, not exported).
        self._encoder_batches = _Batches(iter(dataset.repeat()))

    def compile(self, optimizer="adam", encoder_optimizer=None, auto_scale_loss=True, jit_compile=False, **kwargs):
        """Configures training with one optimizer per part.

        Args:
            optimizer: optimizer or identifier for the decoder (and PixelCNN). Defaults to `"adam"`.
            encoder_optimizer: optimizer or identifier for the encoder; None: a copy of
                `optimizer`'s configuration. A schedule in it is read at the decoder's step
                count (`OnModelSteps`). Defaults to None.
            auto_scale_loss: bool; under `"mixed_float16"` each optimizer gets its own
                `LossScaleOptimizer`. Defaults to True.
            jit_compile: False or `"auto"` (taken as False); True is refused. Defaults to False.
            **kwargs: as `VAE.compile` (`metrics`, `weighted_metrics`, `steps_per_execution`, ...).
        """
        strategy = tf.distribute.get_strategy()
        if strategy.num_replicas_in_sync > 1:
            raise ValueError(
                "Aggressive training is not supported under a distribution strategy with several replicas: the "
                "encoder's inner loop reads its own batches on one device. Train on one device. Received: "
                f"{type(strategy).__name__} with {strategy.num_replicas_in_sync} replicas"
            )
        if jit_compile is True:
            raise ValueError(
                "Aggressive training cannot be XLA-compiled: the encoder's inner loop reads a tf.data iterator. "
                "Received: jit_compile=True"
            )
        optimizer = keras.optimizers.get(optimizer)
        if encoder_optimizer is None:
            encoder_optimizer = optimizer.__class__.from_config(optimizer.get_config())
        optimizers = compile_optimizers(
            self, {"optimizer": optimizer, "encoder_optimizer": encoder_optimizer}, auto_scale_loss, {}, ""
        )
        # No optimizer through Keras: it would build slots for every weight, both parts'.
        super().compile(optimizer=None, auto_scale_loss=False, jit_compile=False, **kwargs)
        self.optimizer, self.encoder_optimizer = optimizers
        self.optimizer.build(self._decoder_variables())
        self.encoder_optimizer.build(self.encoder.trainable_variables)
        inner = getattr(self.encoder_optimizer, "inner_optimizer", self.encoder_optimizer)
        schedule = getattr(inner, "_learning_rate", None)  # Keras keeps a schedule object only there.
        if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule) and not isinstance(schedule, OnModelSteps):
            schedule = OnModelSteps(schedule)
            inner._learning_rate = schedule
        if isinstance(schedule, OnModelSteps):
            schedule.steps = self.optimizer.iterations

    def get_compile_config(self):
        if not self.compiled:
            return {}
        return compile_config_with_optimizers(self, super().get_compile_config())

    def compile_from_config(self, config):
        self.compile(**keras.saving.deserialize_keras_object(config))

    def fit(self, *args, **kwargs):
        if int(self.aggressive_phase.numpy()) and self._encoder_batches is None:
            raise ValueError(
                "The AggressiveVAE is in its aggressive phase, whose encoder steps read fresh batches: call "
                "set_encoder_data(training_dataset) before fit."
            )
        return super().fit(*args, **kwargs)

    def _decoder_variables(self):
        pixelcnn = self.pixelcnn.trainable_variables if self.pixelcnn is not None else []
        return [*self.decoder.trainable_variables, *pixelcnn]

    def train_step(self, data):
        x, _, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        sample_weight = _image_weights(sample_weight)
        if self._compile_metrics is not None:
            reconstruction = self(x, training=False)
        aggressive = ops.equal(self.aggressive_phase, 1)
        # The encoder first catches up with the decoder (only when there are batches to do it on).
        encoder_steps = tf.constant(0)
        if self._encoder_batches is not None:
            encoder_steps = tf.cond(aggressive, self._train_encoder, lambda: tf.constant(0))
        with tf.GradientTape(persistent=True) as tape:
            loss, terms = self.compute_elbo(x, training=True, sample_weight=sample_weight)
            share = distribute.replica_share(_total_weight(x, sample_weight))
            decoder_loss = self.optimizer.scale_loss(loss * share)
            encoder_loss = self.encoder_optimizer.scale_loss(loss * share)
        decoder_variables, encoder_variables = self._decoder_variables(), self.encoder.trainable_variables
        apply_gradients(self.optimizer, tape.gradient(decoder_loss, decoder_variables), decoder_variables)
        # While aggressive this step moves the decoder only; otherwise both, as a VAE's.
        encoder_gradients = tape.gradient(encoder_loss, encoder_variables)
        apply_gradients(self.encoder_optimizer, encoder_gradients, encoder_variables, gate=ops.logical_not(aggressive))
        del tape
        self.encoder_steps_tracker.update_state(ops.cast(encoder_steps, "float32"))
        if self._compile_metrics is not None:
            self.compute_metrics(x, None, reconstruction, sample_weight)
        logs = self._update_metrics(x, loss, terms, sample_weight)
        return {**logs, "aggressive": ops.cast(aggressive, "float32")}

    def _train_encoder(self):
        """Encoder-only steps on fresh batches until `window_rule` stops; returns how many."""

        def step(count, previous_mean, window_sum, stop):
            x, _, sample_weight = keras.utils.unpack_x_y_sample_weight(self._encoder_batches.iterator.get_next())
            loss = self._encoder_step(x, _image_weights(sample_weight))
            return window_rule(count, previous_mean, window_sum, loss, self.max_encoder_steps)

        start = (tf.constant(0), tf.constant(float("inf")), tf.constant(0.0), tf.constant(False))
        count, *_ = tf.while_loop(lambda *state: ops.logical_not(state[-1]), step, start)
        return count

    def _encoder_step(self, x, sample_weight):
        """One encoder-only step on `x`; returns its loss."""
        with tf.GradientTape() as tape:
            loss, _ = self.compute_elbo(x, training=True, sample_weight=sample_weight)
            scaled_loss = self.encoder_optimizer.scale_loss(loss)
        variables = self.encoder.trainable_variables
        apply_gradients(self.encoder_optimizer, tape.gradient(scaled_loss, variables), variables)
        return ops.cast(loss, "float32")

    def test_step(self, data):
        logs = super().test_step(data)
        return {name: value for name, value in logs.items() if name != "encoder_steps"}

    @property
    def metrics(self):
        return [*super().metrics, self.encoder_steps_tracker]

    def get_config(self):
        return {**super().get_config(), "aggressive": self.aggressive, "max_encoder_steps": self.max_encoder_steps}


class _Batches:
    """Holds the inner loop's iterator out of Keras's and TensorFlow's tracking."""

    def __init__(self, iterator):
        self.iterator = iterator
