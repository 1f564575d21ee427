"""One spec per model: the CLI, export, artifact loading and `kerasgen.__all__` are what the specs say."""

import csv
import dataclasses
import json
import os

import keras
import pytest

import kerasgen
from kerasgen import artifacts, export, specs
from kerasgen.cli import COMMANDS, build_parser
from kerasgen.runs.classifier import ClassifierResult
from kerasgen.runs.harness import RunResult

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A shipped run of each model that has a command: its history's last row is what its run ends with.
SHIPPED_RUNS = {"VAE": "vae-mnist-5k", "GAN": "gan-mnist-5k", "VAEGAN": "vaegan-mnist-5k", "AAE": "aae-mnist-5k"}


def test_the_package_exports_each_model_under_its_spec():
    names = [spec.class_name for spec in specs.SPECS]
    assert sorted(names) == [name for name in kerasgen.__all__ if name != "quiet_tensorflow_startup"]
    for spec in specs.SPECS:
        cls = getattr(kerasgen, spec.class_name)
        assert cls is spec.model_class() and cls.__module__ == spec.module
        assert keras.saving.get_registered_name(cls) == spec.registered_name


def test_the_command_line_has_a_training_command_per_spec():
    parsed = build_parser().parse_args(["train-aae"])
    assert parsed.command == "train-aae"
    for spec in specs.SPECS:
        if spec.command is None:
            continue
        config_class, command, help_text, *_ = COMMANDS[spec.command]
        assert config_class is spec.config and help_text == spec.summary
        # The run function a spec names exists and takes a config.
        assert callable(spec.run_function())
    assert [name for name in COMMANDS if name.startswith("train-")] == list(specs.commands())
    assert sum(1 for spec in specs.SPECS if spec.command) == len(specs.commands())  # no command twice


def test_each_headline_reads_what_its_run_logs():
    for spec in specs.SPECS:
        if spec.command is None:
            continue
        if spec.class_name == "Classifier":
            metadata = json.load(open(os.path.join(ROOT, "kerasgen", "assets", "classifier-mnist-5k", "metadata.json")))
            result = ClassifierResult(
                out="", model="", saved_model=None, final_metrics={},
                **{name: metadata[name] for name in ("heldout_split", "heldout_accuracy", "training_seconds")},
            )
            assert spec.headline.format_map(dataclasses.asdict(result)).startswith("Held-out (validation) accuracy 98.40%")
            continue
        with open(os.path.join(ROOT, "saved_models", SHIPPED_RUNS[spec.class_name], "history.csv")) as f:
            last = list(csv.DictReader(f))[-1]
        fields = {field.name: None for field in dataclasses.fields(RunResult)}
        line = spec.headline.format_map({**fields, **{name: float(value) for name, value in last.items() if value != "NA"}})
        assert "{" not in line and line.endswith(".")


def test_the_model_files_and_the_export_dispatch_follow_the_specs():
    assert artifacts.MODEL_FILES == ("vae.keras", "gan.keras", "vaegan.keras", "aae.keras")
    assert export.MODEL_FILES == (*artifacts.MODEL_FILES, "classifier.keras")
    for spec in specs.SPECS:
        assert callable(spec.exporter())

    vae = kerasgen.VAE(image_shape=(8, 8, 1), latent_dim=2, num_filters=(4,), hidden_dim=4, seed=0)
    assert specs.spec_of(vae) is specs.named("VAE")
    aggressive = kerasgen.AggressiveVAE(image_shape=(8, 8, 1), latent_dim=2, num_filters=(4,), hidden_dim=4, seed=0)
    assert specs.spec_of(aggressive) is specs.named("AggressiveVAE")

    class MyVAE(kerasgen.VAE):  # a user's subclass is exported as the model it extends
        pass

    assert specs.spec_of(MyVAE(image_shape=(8, 8, 1), latent_dim=2, num_filters=(4,), hidden_dim=4)) is specs.named("VAE")
    assert specs.spec_of(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])) is None


def test_a_spec_names_what_is_wrong_with_it():
    good = dict(class_name="Toy", module="toy", file="toy.keras", export="toy:export", endpoints=("sample",), summary="a toy")
    specs.ModelSpec(**good)
    for change, message in [
        ({"file": "toy.h5"}, "file must name a .keras file. Received: file='toy.h5'"),
        ({"export": "toy.export"}, "export must be 'module:function'. Received: export='toy.export'"),
        ({"endpoints": ()}, "endpoints must be a non-empty tuple"),
        ({"command": "train-toy"}, "A model with a command needs its config, run and headline"),
        ({"run": "toy:train"}, "config, run and headline belong to a model with a command"),
    ]:
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
            specs.ModelSpec(**{**good, **change})
    with pytest.raises(KeyError, match="No kerasgen model is named 'Toy'"):
        specs.named("Toy")
