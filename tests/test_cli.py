import csv
import json
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasgen.cli import main

# The uniform grey test images are 8-bit data, for which train-vae would choose the logistic mixture;
# these tests exercise the Bernoulli path on binarized pixels, as train-vae runs it on digits.
TINY = ["--likelihood", "bernoulli", "--num-filters", "8", "16", "--hidden-dim", "32", "--latent-dim", "2", "--batch-size", "16", "--validation-size", "16"]


@pytest.fixture
def grey_npz(tmp_path):
    """64 grey 16x16 images with labels, as a Keras-style .npz."""
    rng = np.random.default_rng(0)
    x = (rng.uniform(size=(64, 16, 16)) * 255).astype(np.uint8)
    path = tmp_path / "tiny.npz"
    np.savez(path, x_train=x, y_train=np.arange(64) % 4)
    return str(path)


@pytest.mark.slow
def test_train_vae_writes_every_artifact_and_resumes(tmp_path, grey_npz):
    out = tmp_path / "run"
    args = ["train-vae", "--dataset", grey_npz, "--epochs", "2", "--grid-every", "1", "--out", str(out), *TINY]
    assert main(args) == 0
    for name in ("vae.keras", "config.json", "history.csv", "history.png", "saved_model/saved_model.pb", "checkpoint/state.json"):
        assert (out / name).exists(), name
    assert sorted(os.listdir(out / "samples")) == ["epoch_000.png", "epoch_001.png", "epoch_002.png"]
    assert sorted(os.listdir(out / "reconstructions")) == ["epoch_000.png", "epoch_001.png", "epoch_002.png"]
    assert os.listdir(out / "logs")
    # The final model ships without optimizer state; the checkpoint keeps it for --resume.
    from kerasgen.runs.plumbing import Backup
    from kerasgen.models import VAE

    final = keras.saving.load_model(out / "vae.keras")
    assert getattr(final, "optimizer", None) is None
    checkpoint = VAE.from_config(final.get_config())
    checkpoint.compile(optimizer="adam")  # not the run's optimizer (that one has a schedule): refused
    with pytest.raises(ValueError, match="does not fit"):
        Backup(str(out / "checkpoint")).restore(checkpoint)
    checkpoint.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(2e-3, 6, alpha=0.05)))
    assert Backup(str(out / "checkpoint")).restore(checkpoint) == 2
    assert int(checkpoint.optimizer.iterations) == 2 * 3  # 48 training images, batches of 16
    images = np.random.default_rng(1).uniform(size=(4, 16, 16, 1)).astype("float32")
    np.testing.assert_array_equal(final.reconstruct(images), checkpoint.reconstruct(images))
    config = json.loads((out / "config.json").read_text())
    assert config["binarize"] == "dynamic" and config["epochs"] == 2 and config["image_shape"] == [16, 16, 1]

    # A later run with --resume continues from the checkpoint instead of starting over.
    assert main(["train-vae", "--dataset", grey_npz, "--epochs", "3", "--resume", "--out", str(out), *TINY]) == 0
    with open(out / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    assert {"val_elbo", "val_kl", "val_reconstruction", "seconds"} <= set(rows[0])
    assert json.loads((out / "checkpoint" / "state.json").read_text())["epoch"] == 3

    # Resuming a run that is already done says so instead of training nothing.
    assert main(["train-vae", "--dataset", grey_npz, "--epochs", "3", "--resume", "--out", str(out), *TINY]) == 2

    grid = tmp_path / "grid.png"
    assert main(["sample", "--model", str(out), "--n", "16", "--out", str(grid)]) == 0
    assert tf.io.decode_png(tf.io.read_file(str(grid))).shape == (4 * 18 + 2, 4 * 18 + 2, 1)


@pytest.mark.slow
def test_train_vae_quality_every_scores_prior_samples_against_the_grey_heldout_images(tmp_path, grey_npz, capsys):
    from kerasgen.data import load_dataset
    from kerasgen.evaluation import sample_quality

    classifier = tmp_path / "classifier"
    assert main(["train-classifier", "--dataset", grey_npz, "--validation-size", "16", "--num-filters", "4", "8",
                 "--feature-dim", "8", "--epochs", "1", "--out", str(classifier)]) == 0
    out = tmp_path / "run"
    quality = ["--quality-every", "2", "--classifier", str(classifier)]
    assert main(["train-vae", "--dataset", grey_npz, "--epochs", "3", *quality, "--out", str(out), *TINY]) == 0
    assert "quality.json" in capsys.readouterr().out
    records = json.loads((out / "quality.json").read_text())["records"]
    assert [r["epoch"] for r in records] == [0, 1, 2, 3]  # before training, the first epoch, every 2nd, the last
    with open(out / "history.csv") as f:
        assert [float(r["fd"]) for r in csv.DictReader(f)] == [r["fd"] for r in records[1:]]

    # The VAE trains on binarized pixels, but its samples (mean images) are scored against the
    # held-out images as they are, grey: the last record is the final model's FD against those.
    grey = np.concatenate([x for x, _ in load_dataset(grey_npz, validation_size=16, binarize="none").validation])
    assert not np.isin(grey, (0.0, 1.0)).all()
    scorer = sample_quality.load_classifier(str(classifier), (16, 16, 1))
    samples = sample_quality.sample_images(keras.saving.load_model(out / "vae.keras"), 5000, seed=0)
    fd = sample_quality.frechet_distance(
        sample_quality.compute_features(scorer, grey), sample_quality.compute_features(scorer, samples)
    )
    assert fd == pytest.approx(records[-1]["fd"], rel=1e-4)


@pytest.mark.slow
def test_max_minutes_stops_after_the_epoch_that_spends_it_measures_that_epoch_and_resumes(tmp_path, grey_npz, capsys):
    classifier = tmp_path / "classifier"
    assert main(["train-classifier", "--dataset", grey_npz, "--validation-size", "16", "--num-filters", "4", "8",
                 "--feature-dim", "8", "--epochs", "1", "--out", str(classifier)]) == 0
    out = tmp_path / "run"
    quality = ["--quality-every", "3", "--classifier", str(classifier)]
    # A budget any epoch spends: the run stops after its first, saved and scored as a finished one.
    assert main(["train-vae", "--dataset", grey_npz, "--epochs", "6", "--max-minutes", "1e-6", *quality, "--out", str(out), *TINY]) == 0
    assert "Stopping after epoch 1: " in capsys.readouterr().out
    assert (out / "vae.keras").is_file()
    with open(out / "history.csv") as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == [0]
    records = json.loads((out / "quality.json").read_text())["records"]
    assert [r["epoch"] for r in records] == [0, 1]  # the stopped epoch is measured as the last
    # Resumed with a budget it has not spent, it trains on to --epochs, its clock going on.
    assert main(["train-vae", "--dataset", grey_npz, "--epochs", "3", "--max-minutes", "60", "--resume", *quality, "--out", str(out), *TINY]) == 0
    with open(out / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    seconds = [float(r["seconds"]) for r in rows]
    assert seconds == sorted(seconds)
    assert [r["epoch"] for r in json.loads((out / "quality.json").read_text())["records"]] == [0, 1, 2, 3]  # a fit's first epoch is always measured


@pytest.mark.parametrize(
    "args, message",
    [
        (["train-vae", "--dataset", "no/such/file.npz"], "no/such/file.npz"),
        (["train-vae", "--dataset", "cifar-zillion"], "Received: source='cifar-zillion'"),
        (["train-vae", "--binarize", "none", "--likelihood", "bernoulli"], "needs binary pixels"),
        (["train-vae", "--lr-schedule", "step"], "--lr-schedule must be one of 'constant', 'cosine'. Received: --lr-schedule step"),
        (["train-vae", "--learning-rate", "-1"], "--learning-rate must be a number > 0. Received: --learning-rate -1.0"),
        (["train-gan", "--vae", "v", "--epochs", "0"], "--epochs must be a positive int. Received: --epochs 0"),
        (["train-vae", "--binarize", "none", "--likelihood", "continuous_bernoulli", "--likelihood-scale", "0"],
         "--likelihood-scale must be 'pixel', 'global', 'optimal' or a number > 0. Received: --likelihood-scale 0.0"),
        (["sample", "--model", "no/such/run"], "Received: --model no/such/run"),
        (["train-vae", "--strategy", "mirrors"], "--strategy must be one of 'default', 'mirrored', 'multi-worker'"),
        (["train-gan", "--vae", "v", "--strategy", "multi-worker"], "needs TF_CONFIG in each worker's environment"),
        (["train-vae", "--mixed-precision", "float8"], "--mixed-precision must be one of 'none', 'float16', 'bfloat16'"),
        (["train-vae", "--steps-per-execution", "0"], "--steps-per-execution must be a positive int"),
        # Two replicas over conftest.py's logical CPUs: a Keras 3 bug, refused before anything is written.
        (["train-vae", "--strategy", "mirrored", "--steps-per-execution", "2"], "keras-team/keras#19246"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path, capsys, args, message, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert main([*args, "--out", str(tmp_path / "out")] if args[0].startswith("train") else args) == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error and error.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_a_library_error_names_the_argument_and_the_cli_names_the_flag(tmp_path, capsys, grey_npz):
    # 16x16 images over two levels leave a 4x4 map: 16 positions, which 30 is no multiple of. The
    # config cannot know the image size, so the VAE refuses it, naming its argument.
    from kerasgen.models import VAE

    with pytest.raises(ValueError, match=r"so latent_dim must be a multiple of 16\. Received: latent_dim=30$"):
        VAE(image_shape=(16, 16, 1), latent_dim=30, latent_layout="map", num_filters=(8, 16), hidden_dim=32)
    args = ["train-vae", "--dataset", grey_npz, "--latent-layout", "map", "--latent-dim", "30", "--num-filters", "8", "16",
            "--likelihood", "bernoulli", "--validation-size", "16", "--out", str(tmp_path / "out")]
    assert main(args) == 2
    error = capsys.readouterr().err
    assert error.endswith("so --latent-dim must be a multiple of 16. Received: --latent-dim 30\n"), error
    assert "latent_dim" not in error and error.count("\n") == 1


TINY_RUN = ["train-vae", "--epochs", "1", *TINY]


@pytest.mark.slow
def test_operating_system_errors_are_one_line_and_leave_nothing_half_written(tmp_path, capsys, grey_npz, monkeypatch):
    import errno

    from kerasgen.runs import harness

    def fails_with(args, message):
        assert main([*TINY_RUN, "--dataset", grey_npz, *args]) == 2
        error = capsys.readouterr().err
        assert message in error and "Traceback" not in error and error.count("\n") == 1, error

    a_file = tmp_path / "file"
    a_file.write_text("not a folder")
    fails_with(["--out", str(a_file)], f"--out is a file, not a folder: {a_file}")
    fails_with(["--out", str(a_file / "run")], str(a_file))  # a file where a parent folder should be
    fails_with(["--out", "/sys/kerasgen-run"], "Operation not permitted: /sys/kerasgen-run")  # not writable, even as root

    # Disk full while the run writes its config: one line, and no half-written file.
    def disk_full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device", path)

    monkeypatch.setattr(harness, "write_json", disk_full)
    out = tmp_path / "full"
    fails_with(["--out", str(out)], f"No space left on device: {out / 'config.json'}")
    # Only the empty folders the writability check made: no config.json, no temporaries.
    assert os.listdir(out) == ["logs"] and os.listdir(out / "logs") == []

    # `sample --out` that is a folder.
    assert main(["sample", "--model", "saved_models/vae-mnist-5k", "--out", str(tmp_path)]) == 2
    assert f"--out is a folder; give the PNG file to write: {tmp_path}" in capsys.readouterr().err


def test_an_existing_run_is_refused_without_resume_or_overwrite(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text("{}")
    assert main(["train-vae", "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert "--resume" in error and "--overwrite" in error and error.count("\n") == 1
    # --overwrite deletes only kerasgen runs.
    other = tmp_path / "photos"
    other.mkdir()
    (other / "holiday.jpg").write_text("precious")
    assert main(["train-vae", "--out", str(other), "--overwrite"]) == 2
    assert "holds other files" in capsys.readouterr().err and (other / "holiday.jpg").exists()


@pytest.mark.slow
def test_console_script_is_installed():
    kerasgen = shutil.which("kerasgen", path=os.path.dirname(sys.executable)) or shutil.which("kerasgen")
    assert kerasgen, "the kerasgen console script is missing: install the package with pip install -e ."
    result = subprocess.run([kerasgen, "train-vae", "--help"], capture_output=True, text=True, check=True)
    for flag in ("--dataset", "--epochs", "--latent-dim", "--likelihood", "--binarize", "--beta", "--batch-size", "--out", "--logdir"):
        assert flag in result.stdout


def test_flags_parse_into_the_config():
    from kerasgen.cli import build_parser
    from kerasgen.config import TrainVAEConfig, from_arguments

    args = build_parser().parse_args(
        ["train-vae", "--image-size", "32", "32", "--validation-size", "0.1", "--likelihood", "gaussian", "--likelihood-scale", "0.2",
         "--num-filters", "16", "32", "64", "--resume"]
    )
    config = from_arguments(TrainVAEConfig, args)
    assert config.image_size == (32, 32) and config.num_filters == (16, 32, 64)
    assert config.validation_size == 0.1 and config.likelihood_scale == 0.2 and config.resume
    defaults = from_arguments(TrainVAEConfig, build_parser().parse_args(["train-vae"]))
    assert defaults == TrainVAEConfig()
    gaussian = build_parser().parse_args(["train-vae", "--likelihood", "gaussian", "--likelihood-scale", "global"])
    assert from_arguments(TrainVAEConfig, gaussian).likelihood_scale == "global"


# A flag that depends on another flag, given without it: (command line, config class, field values, what the error says).
WITHOUT_WHAT_THEY_NEED = [
    (["train-vae", "--kl-cycle-ratio", "0.25"], "TrainVAEConfig", dict(kl_cycle_ratio=0.25),
     "--kl-cycle-ratio requires --kl-cycles, without which it has no effect. Received: --kl-cycle-ratio 0.25 without --kl-cycles"),
    (["train-vae", "--pixelcnn-layers", "6"], "TrainVAEConfig", dict(pixelcnn_layers=6),
     "--pixelcnn-layers requires --decoder pixelcnn, without which it has no effect. Received: --pixelcnn-layers 6 with --decoder conv"),
    (["train-vae", "--pixelcnn-filters", "16"], "TrainVAEConfig", dict(pixelcnn_filters=16),
     "--pixelcnn-filters requires --decoder pixelcnn, without which it has no effect. Received: --pixelcnn-filters 16 with --decoder conv"),
    (["train-vae", "--pixelcnn-conditioning", "global"], "TrainVAEConfig", dict(pixelcnn_conditioning="global"),
     "--pixelcnn-conditioning requires --decoder pixelcnn, without which it has no effect. Received: --pixelcnn-conditioning global with --decoder conv"),
    (["train-aae", "--prior-components", "3"], "TrainAAEConfig", dict(prior_components=3),
     "--prior-components requires --prior mixture, without which it has no effect. Received: --prior-components 3 with --prior normal"),
    (["train-aae", "--prior", "normal", "--prior-radius", "2"], "TrainAAEConfig", dict(prior="normal", prior_radius=2.0),
     "--prior-radius requires --prior mixture, without which it has no effect. Received: --prior-radius 2.0 with --prior normal"),
    (["train-vae", "--likelihood", "bernoulli", "--likelihood-scale", "global"], "TrainVAEConfig",
     dict(likelihood="bernoulli", likelihood_scale="global"),
     "--likelihood-scale requires --likelihood gaussian, without which it has no effect. Received: --likelihood-scale global with --likelihood bernoulli"),
    # Left open, the likelihood is chosen from the data, and the choice is never Gaussian.
    (["train-vae", "--likelihood-scale", "0.1"], "TrainVAEConfig", dict(likelihood_scale=0.1),
     "--likelihood-scale requires --likelihood gaussian, without which it has no effect. Received: --likelihood-scale 0.1 without --likelihood"),
    (["pipeline", "--likelihood", "logistic_mixture", "--likelihood-scale", "optimal"], "PipelineConfig",
     dict(likelihood="logistic_mixture", likelihood_scale="optimal"),
     "Received: --likelihood-scale optimal with --likelihood logistic_mixture"),
    (["train-aae", "--likelihood", "continuous_bernoulli", "--likelihood-scale", "global"], "TrainAAEConfig",
     dict(likelihood="continuous_bernoulli", likelihood_scale="global"),
     "Received: --likelihood-scale global with --likelihood continuous_bernoulli"),
    (["train-vae", "--likelihood", "gaussian", "--likelihood-components", "5"], "TrainVAEConfig",
     dict(likelihood="gaussian", likelihood_components=5),
     "--likelihood-components requires --likelihood logistic_mixture, without which it has no effect. Received: --likelihood-components 5 with --likelihood gaussian"),
    (["train-vaegan", "--init", "scratch"], "TrainVAEGANConfig", dict(init="scratch"),
     "--init requires --vae, without which it has no effect. Received: --init scratch without --vae"),
    (["train-aae", "--init", "scratch"], "TrainAAEConfig", dict(init="scratch"),
     "--init requires --vae, without which it has no effect. Received: --init scratch without --vae"),
    (["train-vae", "--aggressive-patience", "2"], "TrainVAEConfig", dict(aggressive_patience=2),
     "--aggressive-patience requires --aggressive, without which it has no effect. Received: --aggressive-patience 2 without --aggressive"),
    (["train-vae", "--aggressive-max-steps", "20"], "TrainVAEConfig", dict(aggressive_max_steps=20),
     "--aggressive-max-steps requires --aggressive, without which it has no effect. Received: --aggressive-max-steps 20 without --aggressive"),
]


def _case_id(value):
    return " ".join(value) if isinstance(value, list) else ""


@pytest.mark.parametrize("args, config_class, values, message", WITHOUT_WHAT_THEY_NEED, ids=_case_id)
def test_a_flag_without_the_flag_it_requires_is_one_clear_line(tmp_path, capsys, monkeypatch, args, config_class, values, message):
    from kerasgen import cli

    # Refused while the flags are read: the command (data, model, folder) never starts.
    def never(config):
        raise AssertionError(f"kerasgen {args[0]} started with {config}")

    config_type, _, help_text = cli.COMMANDS[args[0]]
    monkeypatch.setitem(cli.COMMANDS, args[0], (config_type, never, help_text))
    assert main([*args, "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"kerasgen {args[0]}: error: --") and message in error
    assert "Traceback" not in error and error.count("\n") == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, config_class, values, message", WITHOUT_WHAT_THEY_NEED, ids=_case_id)
def test_a_config_field_without_the_field_it_requires_is_refused(args, config_class, values, message):
    from kerasgen import config

    with pytest.raises(ValueError) as error:
        getattr(config, config_class)(**values)
    assert message in str(error.value)


@pytest.mark.parametrize(
    "args, expected",
    [
        (["train-vae", "--kl-cycles", "4", "--kl-cycle-ratio", "0.25"], dict(kl_cycle_ratio=0.25)),
        (["train-vae", "--decoder", "pixelcnn", "--pixelcnn-layers", "6", "--pixelcnn-filters", "16", "--pixelcnn-conditioning",
          "global"], dict(pixelcnn_layers=6, pixelcnn_filters=16, pixelcnn_conditioning="global")),
        (["train-aae", "--prior", "mixture", "--prior-components", "3", "--prior-radius", "2"],
         dict(prior_components=3, prior_radius=2.0)),
        (["train-vae", "--likelihood", "gaussian", "--likelihood-scale", "global"], dict(likelihood_scale="global")),
        (["train-aae", "--likelihood", "gaussian", "--likelihood-scale", "0.5"], dict(likelihood_scale=0.5)),
        (["pipeline", "--likelihood", "gaussian", "--likelihood-scale", "optimal"], dict(likelihood_scale="optimal")),
        # Left open, the likelihood may be chosen as the logistic mixture; the choice is checked again.
        (["train-vae", "--likelihood-components", "5"], dict(likelihood_components=5)),
        (["train-aae", "--likelihood", "logistic_mixture", "--likelihood-components", "5"], dict(likelihood_components=5)),
        (["train-vaegan", "--vae", "runs/vae", "--init", "scratch"], dict(init="scratch")),
        (["train-aae", "--vae", "runs/vae", "--init", "scratch"], dict(init="scratch")),
        (["train-vae", "--aggressive", "--aggressive-patience", "2"], dict(aggressive_patience=2)),
        (["train-vae", "--aggressive", "--aggressive-max-steps", "20"], dict(aggressive_max_steps=20)),
        # A default value is no use of the flag: the run uses it anyway.
        (["train-vae", "--kl-cycle-ratio", "0.5", "--pixelcnn-layers", "4"], dict(kl_cycle_ratio=0.5, pixelcnn_layers=4)),
        (["train-aae", "--init", "vae", "--prior-radius", "4"], dict(init="vae", prior_radius=4.0)),
    ],
    ids=_case_id,
)
def test_a_flag_with_the_flag_it_requires_parses(args, expected):
    from kerasgen.cli import COMMANDS, build_parser
    from kerasgen.config import from_arguments

    config = from_arguments(COMMANDS[args[0]][0], build_parser().parse_args(args))
    assert {name: getattr(config, name) for name in expected} == expected


def test_every_requirement_names_a_field_of_its_own_config_and_the_defaults_meet_them():
    import dataclasses

    from kerasgen.cli import COMMANDS

    declared = set()
    for config_class, *_ in COMMANDS.values():
        fields = dataclasses.fields(config_class)
        for field in fields:
            requirement = field.metadata.get("requires")
            if requirement is not None:
                declared.add((config_class.__name__, field.name))
                assert requirement.name in {other.name for other in fields}, (
                    f"{config_class.__name__}.{field.name} requires {requirement.name}, which it does not have"
                )
        if not any(field.metadata.get("required") for field in fields):
            config_class()  # The defaults never use a dependent flag.
    assert {
        ("TrainVAEConfig", "kl_cycle_ratio"), ("TrainVAEConfig", "pixelcnn_layers"), ("TrainVAEConfig", "pixelcnn_filters"),
        ("TrainVAEConfig", "pixelcnn_conditioning"), ("TrainAAEConfig", "prior_components"), ("TrainAAEConfig", "prior_radius"), ("TrainVAEConfig", "likelihood_scale"),
        ("TrainAAEConfig", "likelihood_scale"), ("PipelineConfig", "likelihood_scale"), ("TrainVAEGANConfig", "init"),
        ("TrainAAEConfig", "init"), ("TrainVAEConfig", "aggressive_patience"), ("TrainVAEConfig", "aggressive_max_steps"),
    } <= declared
