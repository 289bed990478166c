"""Real Keras 2 clients, written anew on generated data (issue 27): Keras 2.3.1's
`cifar10_cnn.py` (ImageDataGenerator `flow` with augmentation in worker processes),
`flow_from_directory` (a folder of PNGs), `image_ocr.py` (dict inputs with an extra
key) and zhixuhao's U-Net (a generator function zipping two augmented flows), each
through `nbtrain.legacy.enable()` and `model.fit_generator(...)`.

Keras 3 keeps `ImageDataGenerator` for `tf.keras` only; Keras 2 code imports it from
there once ported.  Only augmentations that need no SciPy are used (flips, channel
shifts, a preprocessing function); the affine ones call `scipy.ndimage`, which
Keras asks the user to install.  Process-worker tests leave no process and no
shared-memory segment behind (the autouse fixture checks it).
"""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest

import nbtrain
from nbtrain.data._processes import shm


def _children() -> set[int]:
    """Live (or zombie) children of this process, except a resource tracker."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                tracker = b"resource_tracker" in f.read()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == os.getpid() and not tracker:
            found.add(int(entry))
    return found


def _segments() -> set[str]:
    return {n for n in os.listdir("/dev/shm") if n.startswith(f"{shm.PREFIX}{os.getpid()}_")}


@pytest.fixture(autouse=True)
def legacy_and_nothing_left_behind():
    before, enabled = _children(), nbtrain.legacy.is_enabled()
    nbtrain.legacy.enable()
    yield
    if not enabled:
        nbtrain.legacy.disable()
    assert _children() - before == set(), "worker processes outlived the test"
    assert _segments() == set(), "shared-memory segments outlived the test"


def _image_data_generator(**kwargs):
    from tensorflow.keras.preprocessing.image import ImageDataGenerator

    return ImageDataGenerator(**kwargs)


def _small_cnn(input_shape, classes: int) -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input(input_shape),
        keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(classes, activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.RMSprop(1e-3), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def test_cifar10_cnn_augmentation_flow_on_two_worker_processes(tmp_path):
    rng = np.random.default_rng(0)
    x_train = rng.random((64, 8, 8, 3), dtype=np.float32)
    y_train = keras.utils.to_categorical(np.arange(64) % 4, 4)
    x_test, y_test = x_train[:16], y_train[:16]
    seen = tmp_path / "augmented-in"
    seen.mkdir()

    def mark_process(image):  # a lambda-like function from the notebook: sent by value
        (seen / str(os.getpid())).touch()
        return image

    datagen = _image_data_generator(
        featurewise_center=True, horizontal_flip=True, vertical_flip=True,
        channel_shift_range=0.1, preprocessing_function=mark_process)
    datagen.fit(x_train)  # cifar10_cnn.py computes the featurewise statistics first
    model = _small_cnn((8, 8, 3), 4)
    history = model.fit_generator(datagen.flow(x_train, y_train, batch_size=16),
                                  epochs=2, validation_data=(x_test, y_test), workers=2,
                                  use_multiprocessing=True, verbose=0)
    assert history.epoch == [0, 1]
    assert set(history.history) == {"accuracy", "loss", "val_accuracy", "val_loss"}
    assert all(np.isfinite(history.history["loss"]))
    augmenting = {int(name) for name in os.listdir(seen)} - {os.getpid()}
    assert augmenting  # augmented in the worker processes
    scores = model.evaluate(x_test, y_test, verbose=0)
    assert len(scores) == 2


def test_a_shuffled_flow_serves_every_sample_once_a_pass_from_worker_processes():
    x = np.arange(32, dtype=np.float32).reshape(32, 1, 1, 1) * np.ones((32, 2, 2, 1), np.float32)
    flow = _image_data_generator().flow(x, np.arange(32), batch_size=4)  # shuffled, no seed
    enqueuer = nbtrain.OrderedEnqueuer(flow, use_multiprocessing=True)
    enqueuer.start(workers=2)
    try:
        batches = enqueuer.get()
        passes = [[int(i) for _ in range(8) for i in next(batches)[1]] for _ in range(2)]
    finally:
        enqueuer.stop()
    # each worker would draw its own order lazily; the parent draws one for all
    assert [sorted(p) for p in passes] == [list(range(32))] * 2
    assert passes[0] != list(range(32)) and passes[0] != passes[1]  # shuffled, every pass


def _write_pngs(root, folders: dict[str, int], size: int = 12, mode: str = "RGB") -> None:
    from PIL import Image

    rng = np.random.default_rng(1)
    channels = 3 if mode == "RGB" else None
    for folder, count in folders.items():
        (root / folder).mkdir(parents=True)
        for i in range(count):
            shape = (size, size, channels) if channels else (size, size)
            pixels = rng.integers(0, 256, shape, dtype=np.uint8)
            Image.fromarray(pixels, mode).save(root / folder / f"{i:03d}.png")


def test_flow_from_directory_on_worker_processes_after_a_look_at_a_batch(tmp_path):
    _write_pngs(tmp_path / "train", {"cats": 12, "dogs": 12})
    datagen = _image_data_generator(rescale=1.0 / 255, horizontal_flip=True)
    train = datagen.flow_from_directory(str(tmp_path / "train"), target_size=(12, 12),
                                        batch_size=8, class_mode="categorical")
    assert train.samples == 24 and train.class_indices == {"cats": 0, "dogs": 1}
    for data_batch, labels_batch in train:  # Deep Learning with Python 5.2 looks at a batch
        assert data_batch.shape == (8, 12, 12, 3) and labels_batch.shape == (8, 2)
        break
    model = _small_cnn((12, 12, 3), 2)
    history = model.fit_generator(train, steps_per_epoch=len(train), epochs=2, workers=2,
                                  use_multiprocessing=True, verbose=0)
    assert history.epoch == [0, 1] and all(np.isfinite(history.history["loss"]))

    ordered = _image_data_generator(rescale=1.0 / 255).flow_from_directory(
        str(tmp_path / "train"), target_size=(12, 12), batch_size=8, shuffle=False)
    # on threads: each process pool starts its workers' TensorFlow (seconds a pool)
    loss, accuracy = model.evaluate_generator(ordered, workers=2)
    predictions = model.predict_generator(ordered, workers=2)
    assert predictions.shape == (24, 2)
    expected = model.predict(np.concatenate([ordered[i][0] for i in range(len(ordered))]),
                             verbose=0)
    np.testing.assert_allclose(predictions, expected, rtol=1e-5, atol=1e-6)
    assert np.isfinite(loss) and 0 <= accuracy <= 1


# -- image_ocr.py: dict inputs with a key that names no input -------------------------------
def _ocr_like_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    the_input = keras.Input((6, 4), name="the_input")
    lengths = keras.Input((1,), name="input_length")
    features = keras.layers.Dense(3)(keras.layers.Flatten()(the_input))
    joined = keras.layers.Concatenate()([features, lengths])
    out = keras.layers.Dense(1, name="ctc")(joined)
    model = keras.Model(inputs=[the_input, lengths], outputs=out)
    model.compile(loss={"ctc": lambda y_true, y_pred: keras.ops.mean(y_pred ** 2, axis=-1)},
                  optimizer=keras.optimizers.SGD(0.01))
    return model


class TextImageGenerator:
    """image_ocr.py's generator object: `next_train()` yields `(inputs, outputs)`
    dicts, the inputs with `'source_str'`, a list of strings for visualisation."""

    def __init__(self, size: int = 8, typo: bool = False):
        self.size, self.typo = size, typo
        self.rng = np.random.default_rng(2)

    def get_batch(self):
        inputs = {"the_input": self.rng.random((self.size, 6, 4), dtype=np.float32),
                  "input_length": np.full((self.size, 1), 6, np.float32),
                  "source_str": [f"word{i}" for i in range(self.size)]}
        if self.typo:
            inputs["input_lenght"] = inputs.pop("input_length")
        return inputs, {"ctc": np.zeros([self.size])}

    def next_train(self):
        while True:
            yield self.get_batch()


@pytest.mark.parametrize("workers", [0, 2])
def test_image_ocr_dict_inputs_with_an_extra_key(workers):
    model = _ocr_like_model()
    gen = TextImageGenerator()
    with pytest.warns(UserWarning, match=r"'source_str', which names no input of the model") as w:
        history = model.fit_generator(gen.next_train(), steps_per_epoch=4, epochs=2,
                                      validation_data=gen.next_train(), validation_steps=2,
                                      workers=workers, verbose=0)
    assert history.epoch == [0, 1] and "val_loss" in history.history
    named = [m for m in w if "source_str" in str(m.message)]
    assert len(named) == 1, [str(m.message) for m in named]  # once, not every batch
    assert "'input_length', 'the_input'" in str(named[0].message)
    with pytest.warns(UserWarning, match="source_str"):
        loss = model.evaluate_generator(gen.next_train(), steps=2, workers=workers)
        predictions = model.predict_generator(gen.next_train(), steps=2, workers=workers)
    assert np.isfinite(loss) and predictions.shape == (16, 1)


def test_a_typo_in_an_input_key_is_named_in_a_warning():
    model = _ocr_like_model()
    with pytest.warns(UserWarning, match=r"'input_lenght'"), pytest.raises(Exception):  # noqa: B017
        model.fit_generator(TextImageGenerator(typo=True).next_train(), steps_per_epoch=2,
                            workers=0, verbose=0)


# -- zhixuhao's U-Net: trainGenerator, a generator function of two zipped flows --------------
def adjust_data(img, mask):
    img = img / 255
    mask = mask / 255
    mask[mask > 0.5] = 1
    mask[mask <= 0.5] = 0
    return img, mask


def train_generator(batch_size, train_path, image_folder, mask_folder, aug_dict,
                    target_size=(16, 16), seed=1):
    """zhixuhao/unet data.py's trainGenerator: the same seed for image and mask, so
    both get the same augmentation."""
    from tensorflow.keras.preprocessing.image import ImageDataGenerator

    image_datagen = ImageDataGenerator(**aug_dict)
    mask_datagen = ImageDataGenerator(**aug_dict)
    image_generator = image_datagen.flow_from_directory(
        train_path, classes=[image_folder], class_mode=None, color_mode="grayscale",
        target_size=target_size, batch_size=batch_size, seed=seed)
    mask_generator = mask_datagen.flow_from_directory(
        train_path, classes=[mask_folder], class_mode=None, color_mode="grayscale",
        target_size=target_size, batch_size=batch_size, seed=seed)
    for img, mask in zip(image_generator, mask_generator):
        yield adjust_data(img, mask)


def test_unet_generator_function_on_a_worker_process(tmp_path):
    _write_pngs(tmp_path / "train", {"image": 6, "label": 6}, size=16, mode="L")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 1))
    conv = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    down = keras.layers.MaxPooling2D(2)(conv)
    up = keras.layers.UpSampling2D(2)(keras.layers.Conv2D(4, 3, padding="same")(down))
    merged = keras.layers.concatenate([conv, up], axis=3)
    model = keras.Model(inputs, keras.layers.Conv2D(1, 1, activation="sigmoid")(merged))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy",
                  metrics=["accuracy"])
    generator = train_generator(2, str(tmp_path / "train"), "image", "label",
                                dict(horizontal_flip=True, fill_mode="nearest"))
    checkpoint = keras.callbacks.ModelCheckpoint(str(tmp_path / "unet.keras"), monitor="loss",
                                                 save_best_only=True)
    history = model.fit_generator(generator, steps_per_epoch=3, epochs=2,
                                  callbacks=[checkpoint], use_multiprocessing=True, verbose=0)
    assert history.epoch == [0, 1] and all(np.isfinite(history.history["loss"]))
    assert (tmp_path / "unet.keras").exists()
