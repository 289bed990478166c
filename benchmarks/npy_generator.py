"""A tutorial-style Keras data generator for `bench_data.py` (d): a
`keras.utils.Sequence` in its own module that imports Keras, loading one
`.npy` file per sample (the Stanford "DataGenerator" tutorial's pattern)."""

from __future__ import annotations

import os

import keras
import numpy as np

SHAPE = (32, 32, 32, 1)
CLASSES = 10


class DataGenerator(keras.utils.Sequence):
    """Batches of `batch_size` samples, each read from `<folder>/<id>.npy`."""

    def __init__(self, ids, labels, folder, batch_size=32, shuffle=True, **kwargs):
        super().__init__(**kwargs)
        self.ids, self.labels, self.folder = ids, labels, folder
        self.batch_size, self.shuffle = batch_size, shuffle
        self.on_epoch_end()

    def __len__(self):
        return len(self.ids) // self.batch_size

    def __getitem__(self, index):
        picked = self.indexes[index * self.batch_size:(index + 1) * self.batch_size]
        x = np.empty((self.batch_size, *SHAPE), np.float32)
        y = np.empty(self.batch_size, int)
        for i, k in enumerate(picked):
            x[i] = np.load(os.path.join(self.folder, f"{self.ids[k]}.npy"))
            y[i] = self.labels[self.ids[k]]
        return x, keras.utils.to_categorical(y, num_classes=CLASSES)

    def on_epoch_end(self):
        self.indexes = np.arange(len(self.ids))
        if self.shuffle:
            np.random.shuffle(self.indexes)


def sample_ids(n: int) -> tuple[list[str], dict[str, int]]:
    """The ids and labels of the `n` samples `write_samples` writes."""
    ids = [f"id-{i}" for i in range(n)]
    return ids, {name: i % CLASSES for i, name in enumerate(ids)}


def write_samples(folder: str, n: int) -> tuple[list[str], dict[str, int]]:
    """Write `n` random samples as .npy files; return their ids and labels."""
    rng = np.random.default_rng(0)
    ids, labels = sample_ids(n)
    for name in ids:
        np.save(os.path.join(folder, f"{name}.npy"), rng.random(SHAPE, np.float32))
    return ids, labels


def model() -> keras.Model:
    """A small classifier: the data, not the model, sets the pace."""
    m = keras.Sequential([keras.Input(SHAPE), keras.layers.GlobalAveragePooling3D(),
                          keras.layers.Dense(CLASSES, activation="softmax")])
    m.compile(optimizer="adam", loss="categorical_crossentropy")
    return m
