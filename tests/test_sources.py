"""Tests for kerasgen.data.sources: .npz key names, offline tfds, OS-level errors.

Nothing here reaches the network: tfds downloads go through a proxy on a closed
local port, and the datasets that do get prepared are generated locally.
"""

import builtins
import os
import re
import socket
import time

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from kerasgen.data import RawData, load_arrays, load_dataset
from kerasgen.data import sources
from kerasgen.data.sources import open_lazily


def write_npz(path, **arrays):
    np.savez_compressed(path, **arrays)
    return str(path)


def tree(folder):
    """Every path under `folder` with its content (None for folders)."""
    result = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            result[os.path.relpath(os.path.join(root, name), folder)] = None
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                result[os.path.relpath(path, folder)] = f.read()
    return result


# ----------------------------------------------------------------------------
# .npz key names


IMAGES = np.arange(6 * 4 * 4, dtype=np.uint8).reshape(6, 4, 4)
LABELS = np.array([0, 1, 2, 0, 1, 2])
TEST_IMAGES = IMAGES[:2] + 100
TEST_LABELS = np.array([2, 0])


@pytest.mark.parametrize(
    "names",
    [
        {"x_train": "x_train", "y_train": "y_train", "x_test": "x_test", "y_test": "y_test"},
        {"x_train": "X_train", "y_train": "Y_train", "x_test": "X_test", "y_test": "Y_test"},
        {"x_train": "train_images", "y_train": "train_labels", "x_test": "test_images", "y_test": "test_labels"},
        {"x_train": "images", "y_train": "labels"},
        {"x_train": "x", "y_train": "y"},
        {"x_train": "X", "y_train": "Y"},
        {"x_train": "images"},
    ],
)
def test_npz_accepts_common_key_names_and_records_them(tmp_path, names):
    values = {"x_train": IMAGES, "y_train": LABELS, "x_test": TEST_IMAGES, "y_test": TEST_LABELS}
    source = write_npz(tmp_path / "data.npz", **{name: values[field] for field, name in names.items()})
    raw = load_arrays(source)
    assert raw.keys == names and raw.source == source
    for field in ("x_train", "y_train", "x_test", "y_test"):
        if field in names:
            np.testing.assert_array_equal(getattr(raw, field), values[field])
        else:
            assert getattr(raw, field) is None


def test_npz_validation_keys(tmp_path):
    source = write_npz(
        tmp_path / "data.npz", images=IMAGES, validation_images=TEST_IMAGES, y_val=TEST_LABELS
    )
    raw = load_arrays(source)
    assert raw.keys == {"x_train": "images", "x_validation": "validation_images", "y_validation": "y_val"}
    np.testing.assert_array_equal(raw.x_validation, TEST_IMAGES)
    np.testing.assert_array_equal(raw.y_validation, TEST_LABELS)


@pytest.mark.parametrize(
    "arrays, role, first, second",
    [
        ({"x_train": IMAGES, "images": IMAGES}, "train images", "x_train", "images"),
        ({"x": IMAGES, "y": LABELS, "labels": LABELS}, "train labels", "labels", "y"),
        ({"x": IMAGES, "x_test": TEST_IMAGES, "test_images": TEST_IMAGES}, "test images", "x_test", "test_images"),
    ],
)
def test_npz_with_two_names_for_one_array_is_refused(tmp_path, arrays, role, first, second):
    source = write_npz(tmp_path / "data.npz", **arrays)
    with pytest.raises(
        ValueError, match=rf"several arrays that could be the {role}: '{first}' and '{second}'"
    ):
        load_arrays(source)


def test_npz_without_image_key_lists_found_and_accepted_names(tmp_path):
    source = write_npz(tmp_path / "data.npz", pixels=IMAGES, targets=LABELS)
    with pytest.raises(ValueError) as info:
        load_arrays(source)
    message = str(info.value)
    assert "Found arrays ['pixels', 'targets']" in message
    assert "x_train: x_train, X_train, train_images, images, x, X" in message
    assert "y_train: y_train, Y_train, train_labels, labels, y, Y" in message
    assert message.endswith(f"Received: source={source!r}") and "\n" not in message


def test_npz_test_labels_without_test_images_is_refused(tmp_path):
    source = write_npz(tmp_path / "data.npz", x=IMAGES, test_labels=TEST_LABELS)
    with pytest.raises(
        ValueError, match=r"test labels but no test images: it holds 'test_labels' but none of x_test"
    ):
        load_arrays(source)


def test_describe_says_what_came_from_where(tmp_path):
    source = write_npz(tmp_path / "faces.npz", images=IMAGES, labels=LABELS)
    assert load_arrays(source).describe() == (
        f"{source}: 6 train images from 'images', labels from 'labels'; "
        "no validation split; no test split (4x4 uint8)"
    )
    both = write_npz(tmp_path / "both.npz", x=IMAGES, x_test=TEST_IMAGES, y_test=TEST_LABELS)
    assert load_arrays(both).describe() == (
        f"{both}: 6 train images from 'x', unlabelled; no validation split; "
        "2 test images from 'x_test', labels from 'y_test' (4x4 uint8)"
    )
    # Built by hand: no keys, no source.
    raw = RawData(np.zeros((3, 2, 2, 1), np.float32), np.zeros(3, int), None, None, num_classes=5)
    assert raw.keys is None and raw.describe() == (
        "3 train images, labelled; no validation split; no test split (2x2x1 float32, 5 classes)"
    )


def test_mnist_5k_describe():
    assert load_arrays("mnist-5k").describe() == (
        "mnist-5k: 5000 train images from 'x', labels from 'y'; no validation split; "
        "no test split (28x28 uint8, 10 classes)"
    )


def test_idx_folder_records_file_names(tmp_path):
    images = np.zeros((3, 2, 2), np.uint8)
    header = bytes([0, 0, 0x08, 3]) + np.array(images.shape, ">u4").tobytes()
    (tmp_path / "train-images-idx3-ubyte").write_bytes(header + images.tobytes())
    raw = load_arrays(str(tmp_path))
    assert raw.keys == {"x_train": "train-images-idx3-ubyte"}
    assert raw.describe().endswith(
        ": 3 train images from 'train-images-idx3-ubyte', unlabelled; no validation split; "
        "no test split (2x2 uint8)"
    )


# ----------------------------------------------------------------------------
# tfds without network: fails in seconds, one line, nothing left behind


@pytest.fixture
def offline(monkeypatch):
    """Sends every download through a proxy on a closed local port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{port}")
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    return port


def assert_fails_offline(data_dir, shown_dir, port):
    start = time.monotonic()
    with pytest.raises(RuntimeError) as info:
        load_arrays("tfds:mnist", data_dir=data_dir)
    assert time.monotonic() - start < 10
    message = str(info.value)
    assert "\n" not in message and info.value.__cause__ is None
    assert message.startswith(
        f"TensorFlow Datasets dataset 'mnist' is not prepared in data_dir {shown_dir!r} and "
        f"cannot be downloaded: 127.0.0.1:{port} is unreachable (Connection refused)."
    )
    assert "--data-dir" in message and f"data_dir={data_dir!r}" in message


def test_offline_tfds_fails_fast_and_keeps_existing_files(tmp_path, offline):
    data_dir = tmp_path / "tfds"
    (data_dir / "downloads" / "mnist").mkdir(parents=True)
    (data_dir / "downloads" / "mnist" / "old.bin").write_bytes(b"old")
    (data_dir / "mnist").mkdir()
    (data_dir / "mnist" / "notes.txt").write_text("mine")
    (data_dir / "keep.txt").write_text("keep")
    before = tree(data_dir)
    assert_fails_offline(str(data_dir), str(data_dir), offline)
    assert tree(data_dir) == before


def test_offline_tfds_removes_the_data_dir_it_created(tmp_path, offline):
    data_dir = tmp_path / "new" / "tfds"
    assert_fails_offline(str(data_dir), str(data_dir), offline)
    assert os.listdir(tmp_path) == []


def test_offline_tfds_with_the_default_data_dir(tmp_path, offline, monkeypatch):
    default = tmp_path / "tensorflow_datasets"
    monkeypatch.setattr(tfds.core.constants, "DATA_DIR", str(default))
    assert_fails_offline(None, str(default), offline)
    assert os.listdir(tmp_path) == []


def test_mock_data_needs_no_network(tmp_path, offline):
    with tfds.testing.mock_data(num_examples=4):
        raw = load_arrays("tfds:mnist", data_dir=str(tmp_path))
    assert raw.x_train.shape == (4, 28, 28, 1) and raw.num_classes == 10
    assert os.listdir(tmp_path) == []


class TinyImages(tfds.core.GeneratorBasedBuilder):
    """Six 4x4 images generated locally: tfds prepares it without downloading."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(4, 4, 1)),
                    "label": tfds.features.ClassLabel(num_classes=3),
                }
            )
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(6), "test": self._generate_examples(2)}

    def _generate_examples(self, count):
        for i in range(count):
            yield i, {"image": np.full((4, 4, 1), i, np.uint8), "label": i % 3}


class BrokenImages(TinyImages):
    """Fails half-way through preparation, as a corrupt download would."""

    def _generate_examples(self, count):
        yield 0, {"image": np.zeros((4, 4, 1), np.uint8), "label": 0}
        raise OSError("disk on fire")


def test_tfds_dataset_is_prepared_once_then_reused(tmp_path, offline):
    raw = load_arrays("tfds:tiny_images", data_dir=str(tmp_path))
    assert sorted(raw.x_train[:, 0, 0, 0]) == list(range(6)) and raw.x_test.shape == (2, 4, 4, 1)
    assert raw.num_classes == 3 and raw.describe().startswith("tfds:tiny_images: 6 train images")
    prepared = tree(tmp_path)
    np.testing.assert_array_equal(load_arrays("tfds:tiny_images", data_dir=str(tmp_path)).x_test, raw.x_test)
    assert tree(tmp_path) == prepared


def test_failed_tfds_preparation_leaves_nothing(tmp_path, offline):
    (tmp_path / "keep.txt").write_text("keep")
    with pytest.raises(RuntimeError) as info:
        load_arrays("tfds:broken_images", data_dir=str(tmp_path))
    message = str(info.value)
    assert "\n" not in message
    assert re.search(r"Could not download and prepare .*'broken_images'.*disk on fire", message)
    assert tree(tmp_path) == {"keep.txt": b"keep"}


def test_probe_gives_up_on_a_host_that_does_not_answer(monkeypatch):
    real_connect = socket.create_connection

    def connect(address, timeout=None):
        if address[0] == "hangs.invalid":
            time.sleep(5)  # As a DNS lookup or a SYN into a black hole can.
        return real_connect(address, timeout=timeout)

    monkeypatch.setattr(socket, "create_connection", connect)
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        up = ("127.0.0.1", listening.getsockname()[1])
        assert sources._unreachable_host([up], timeout=0.2) is None
        start = time.monotonic()
        reason = sources._unreachable_host([up, ("hangs.invalid", 443)], timeout=0.2)
    assert reason == "hangs.invalid:443 did not answer within 0.2 s"
    assert time.monotonic() - start < 2


# ----------------------------------------------------------------------------
# OS-level problems: one line naming the path, never a raw traceback


def test_tfds_data_dir_that_is_a_file(tmp_path):
    data_dir = tmp_path / "file"
    data_dir.write_text("not a folder")
    with pytest.raises(ValueError, match=r"data_dir must be a folder, but it is a file\."):
        load_arrays("tfds:tiny_images", data_dir=str(data_dir))
    assert data_dir.read_text() == "not a folder"


def test_npz_path_that_is_a_folder(tmp_path):
    (tmp_path / "data.npz").mkdir()
    with pytest.raises(ValueError, match=r"names an \.npz file but is a folder.*data\.npz'$"):
        load_arrays(str(tmp_path / "data.npz"))


def test_idx_file_that_is_a_folder(tmp_path):
    (tmp_path / "train-images-idx3-ubyte.gz").mkdir()
    path = str(tmp_path / "train-images-idx3-ubyte.gz")
    with pytest.raises(
        ValueError,
        match=re.escape(f"Could not read the IDX file: it is a folder, not a file. Received: path={path!r}"),
    ):
        load_arrays(str(tmp_path))


def test_source_that_is_a_pipe(tmp_path):
    os.mkfifo(tmp_path / "data.npz")
    with pytest.raises(ValueError, match=r"neither a regular file nor a folder"):
        load_arrays(str(tmp_path / "data.npz"))


def test_image_that_is_a_dangling_link(tmp_path):
    (tmp_path / "a.png").symlink_to(tmp_path / "gone.png")
    path = str(tmp_path / "a.png")
    with pytest.raises(
        FileNotFoundError,
        match=re.escape(f"Could not read the image file: No such file or directory. Received: path={path!r}"),
    ):
        load_arrays(str(tmp_path))


def deny(monkeypatch, denied):
    """Makes opening or listing `denied` fail as it does without permission.

    Tests run as root in some CI containers, where chmod cannot take access away.
    """
    denied = str(denied)

    def refuse(path):
        if os.fspath(path) == denied:
            raise PermissionError(13, "Permission denied", denied)

    real_open, real_listdir, real_scandir = builtins.open, os.listdir, os.scandir

    def fake_open(path, *args, **kwargs):
        refuse(path)
        return real_open(path, *args, **kwargs)

    def fake_listdir(path="."):
        refuse(path)
        return real_listdir(path)

    def fake_scandir(path="."):
        refuse(path)
        return real_scandir(path)

    monkeypatch.setattr(sources, "open", fake_open, raising=False)
    monkeypatch.setattr(os, "listdir", fake_listdir)
    monkeypatch.setattr(os, "scandir", fake_scandir)


def png_folder(folder):
    import tensorflow as tf

    for name in ("a/1.png", "b/2.png"):
        os.makedirs(folder / os.path.dirname(name), exist_ok=True)
        tf.io.write_file(str(folder / name), tf.io.encode_png(np.zeros((2, 2, 1), np.uint8)))
    return folder


def idx_folder(folder):
    (folder / "train-images-idx3-ubyte").write_bytes(bytes([0, 0, 8, 3]) + bytes(12))
    return str(folder)


@pytest.mark.parametrize(
    "make, denied, what, received",
    [
        (lambda d: write_npz(d / "data.npz", x=IMAGES), "data.npz", "the .npz file", "source"),
        (lambda d: str(png_folder(d / "images")), "images", "the dataset folder", "source"),
        (lambda d: str(png_folder(d / "images")), "images/b", "a folder of the image folder", "path"),
        (lambda d: str(png_folder(d / "images")), "images/b/2.png", "the image file", "path"),
        (lambda d: idx_folder(d), "train-images-idx3-ubyte", "the IDX file", "path"),
    ],
)
def test_permission_denied_names_the_path(tmp_path, monkeypatch, make, denied, what, received):
    source = make(tmp_path)
    deny(monkeypatch, tmp_path / denied)
    path = str(tmp_path / denied)
    with pytest.raises(ValueError) as info:
        load_arrays(source)
    assert str(info.value) == (
        f"Could not read {what}: permission denied (check the permissions of it and of "
        f"its folders). Received: {received}={path!r}"
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_permission_denied_for_real(tmp_path):
    source = write_npz(tmp_path / "data.npz", x=IMAGES)
    os.chmod(source, 0)
    with pytest.raises(ValueError, match=r"Could not read the \.npz file: permission denied"):
        load_arrays(source)
    folder = png_folder(tmp_path / "images")
    os.chmod(folder, 0)
    try:
        with pytest.raises(ValueError, match=r"permission denied"):
            load_arrays(str(folder))
        with pytest.raises(ValueError, match=r"Could not read the dataset path: permission denied"):
            load_arrays(str(folder / "a"))
    finally:
        os.chmod(folder, 0o755)


# ----------------------------------------------------------------------------
# Image folders: split folders, mixed colour modes and sizes


def pil_png(path, image):
    """Writes a Pillow image as a PNG, making its folder."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image.save(path)


def grey(path, value, size=(4, 4)):
    from PIL import Image

    pil_png(path, Image.fromarray(np.full(size, value, np.uint8), "L"))


@pytest.mark.parametrize("held_out", ["test", "valid"])
@pytest.mark.parametrize("labelled", [True, False])
def test_split_folders_fill_their_splits(tmp_path, held_out, labelled):
    for split, count in (("train", 6), (held_out, 2)):
        for i in range(count):
            sub = f"{'cat' if i % 2 else 'ant'}/" if labelled else ""
            grey(tmp_path / split / f"{sub}{i}.png", 10 * i + (100 if split != "train" else 0))
    raw = load_arrays(str(tmp_path))
    field = "test" if held_out == "test" else "validation"
    other = "validation" if field == "test" else "test"
    assert raw.x_train.shape == (6, 4, 4, 1) and getattr(raw, f"x_{other}") is None
    held = getattr(raw, f"x_{field}")
    np.testing.assert_array_equal(held[:, 0, 0, 0], [100, 110])
    assert raw.keys == {"x_train": "train", f"x_{field}": held_out}
    if labelled:
        assert raw.num_classes == 2
        np.testing.assert_array_equal(raw.y_train, [0, 0, 0, 1, 1, 1])  # ant/0,2,4 then cat/1,3,5
        np.testing.assert_array_equal(getattr(raw, f"y_{field}"), [0, 1])
    else:
        assert raw.y_train is None and raw.num_classes is None
    for stream in (False, True):
        data = load_dataset(str(tmp_path), validation_size=2, batch_size=4, stream=stream)
        # A test folder leaves validation to be held out of train; a valid folder is the validation.
        assert (data.num_train, data.num_validation, data.num_test) == (
            (4, 2, 2) if held_out == "test" else (6, 2, 0)
        )


def test_split_folders_must_agree_on_classes(tmp_path):
    grey(tmp_path / "train" / "ant" / "0.png", 0)
    grey(tmp_path / "train" / "cat" / "1.png", 0)
    grey(tmp_path / "test" / "ant" / "2.png", 0)
    grey(tmp_path / "test" / "dog" / "3.png", 0)
    with pytest.raises(ValueError, match=r"disagree on the classes: 'test' lacks \['cat'\] and has \['dog'\]"):
        load_arrays(str(tmp_path))
    with pytest.raises(ValueError, match=r"disagree on the classes"):
        open_lazily(str(tmp_path))


def test_split_folders_beside_other_folders_are_refused(tmp_path):
    grey(tmp_path / "train" / "0.png", 0)
    grey(tmp_path / "extra" / "1.png", 0)
    with pytest.raises(ValueError, match=r"split folders \(train\) beside other folders \['extra'\]"):
        load_arrays(str(tmp_path))


def mixed_folder(folder):
    """RGBA, RGB, grey and palette PNGs; two of 6x5, one of 4x4, one of 3x7."""
    from PIL import Image

    rgba = np.zeros((6, 5, 4), np.uint8)
    rgba[...] = (10, 20, 30, 0)  # Fully transparent: its colour must survive.
    pil_png(folder / "a_rgba.png", Image.fromarray(rgba, "RGBA"))
    pil_png(folder / "b_rgb.png", Image.fromarray(np.full((6, 5, 3), (40, 50, 60), np.uint8), "RGB"))
    grey(folder / "c_grey.png", 77, size=(4, 4))
    palette = Image.new("P", (7, 3))  # PIL sizes are (width, height): 3x7 images.
    palette.putpalette([0, 0, 0, 200, 100, 50] + [0] * 762)
    palette.paste(1, (0, 0, 7, 3))
    pil_png(folder / "d_palette.png", palette)
    return str(folder)


def test_mixed_modes_and_sizes_are_read_in_one_mode(tmp_path, capsys):
    folder = mixed_folder(tmp_path / "mixed")
    raw = load_arrays(folder)
    out = capsys.readouterr().out
    assert raw.x_train.shape == (4, 6, 5, 3) and raw.x_train.dtype == np.uint8
    np.testing.assert_array_equal(raw.x_train[0], np.full((6, 5, 3), (10, 20, 30)))  # alpha dropped
    np.testing.assert_array_equal(raw.x_train[1], np.full((6, 5, 3), (40, 50, 60)))
    np.testing.assert_array_equal(raw.x_train[2], np.full((6, 5, 3), 77))  # grey replicated, resized
    np.testing.assert_array_equal(raw.x_train[3], np.full((6, 5, 3), (200, 100, 50)))  # palette looked up
    lines = out.strip().splitlines()
    assert len(lines) == 2, out
    assert "1 of 4 images have an alpha channel" in lines[0] and "dropped" in lines[0]
    assert "3 sizes; the most common, 6x5" in lines[1] and "2 of 4 images" in lines[1]
    assert "--image-size" in lines[1]
    # Asked for a size: no line about sizes, every image at that size.
    raw = load_arrays(folder, image_size=(3, 7))
    assert raw.x_train.shape == (4, 3, 7, 3) and "most common" not in capsys.readouterr().out
    np.testing.assert_array_equal(raw.x_train[3], np.full((3, 7, 3), (200, 100, 50)))


def test_streamed_reader_gives_the_in_memory_arrays(tmp_path):
    folder = mixed_folder(tmp_path / "mixed")
    files = open_lazily(folder)
    read = files.reader()
    streamed = np.stack([read(tf.constant(path)).numpy() for path in files.paths()])
    np.testing.assert_array_equal(streamed, load_arrays(folder).x_train, strict=True)
    np.testing.assert_array_equal(files.read([3, 0]), streamed[[3, 0]], strict=True)


def test_all_grey_folder_gives_one_channel(tmp_path, capsys):
    from PIL import Image

    grey(tmp_path / "a.png", 5)
    pil_png(tmp_path / "b.png", Image.fromarray(np.stack([np.full((4, 4), 9, np.uint8)] * 2, -1), "LA"))
    raw = load_arrays(str(tmp_path))
    assert raw.x_train.shape == (2, 4, 4, 1)
    np.testing.assert_array_equal(raw.x_train[:, 0, 0, 0], [5, 9])
    assert "read as grey" in capsys.readouterr().out


def test_corrupt_body_is_named(tmp_path):
    for i in range(3):
        grey(tmp_path / f"{i}.png", 5)
    # A valid header (Pillow reads it) but the pixel data cut short: TensorFlow's decoding error
    # does not name the file, the error must.
    content = (tmp_path / "1.png").read_bytes()
    (tmp_path / "1.png").write_bytes(content[:-20])
    with pytest.raises(ValueError, match=r"Could not decode image file.*1\.png"):
        load_arrays(str(tmp_path))


def test_an_image_folder_is_decoded_once_per_process_until_its_folders_change(tmp_path, monkeypatch):
    from PIL import Image

    from kerasgen.data import sources

    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for i in range(2):
            Image.fromarray(np.full((8, 8, 3), 40 * i + (cls == "b") * 100, np.uint8)).save(tmp_path / cls / f"{i}.png")
    calls = []
    real = sources._load_image_folder
    monkeypatch.setattr(sources, "_load_image_folder", lambda files: calls.append(1) or real(files))
    first = sources.load_arrays(str(tmp_path))
    second = sources.load_arrays(str(tmp_path))
    assert len(calls) == 1 and np.array_equal(first.x_train, second.x_train)
    with pytest.raises(ValueError):
        second.x_train[0, 0, 0, 0] = 1  # read-only: no caller changes what the next one gets
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a" / "2.png")
    third = sources.load_arrays(str(tmp_path))
    assert len(calls) == 2 and len(third.x_train) == 5
