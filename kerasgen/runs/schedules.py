"""Learning-rate schedules named by the run configs' `--lr-schedule`."""

import keras

from kerasgen import validate
from kerasgen.options import LR_SCHEDULES


def learning_rate(config, steps_per_epoch):
    """Adam's learning rate for `config` (`learning_rate`, `lr_schedule`, `epochs`).

    `"constant"`: `config.learning_rate`. `"cosine"`: cosine decay to 5% of it over the whole run.
    The schedule reads the optimizer's step count, which the checkpoint keeps, so a resumed run
    continues it; a resumed run with more `--epochs` stretches the remaining decay.
    """
    if validate.one_of("lr_schedule", config.lr_schedule, LR_SCHEDULES) == "constant":
        return config.learning_rate
    return keras.optimizers.schedules.CosineDecay(
        config.learning_rate, decay_steps=config.epochs * steps_per_epoch, alpha=0.05
    )
