#!/usr/bin/env python3
"""Builds the regression example data set, Data/diabetes, from scikit-learn's bundled diabetes data.

Efron, Hastie, Johnstone and Tibshirani (2004), "Least Angle Regression": 442 patients, ten
baseline variables (age, sex, body mass index, average blood pressure, six blood serum
measurements) and a quantitative measure of disease progression one year later (25..346), as
shipped inside scikit-learn (BSD-3-Clause). No network is needed.

Writes TFRecord shards of tf.train.Examples with
  feature: float list of 10 values, each variable standardised with the training split's mean
           and standard deviation (so validation data is scaled as unseen data would be)
  target:  float list of 1 value, the disease progression, unscaled
split with a fixed seed into 354 training and 88 validation samples:
  Data/diabetes/train/diabetes-train-00000-of-00002.tfrecord, diabetes-train-00001-of-00002.tfrecord
  Data/diabetes/val/diabetes-val-00000-of-00001.tfrecord

The TFRecord and Example encoding and the shard layout are make_digits.py's plain-Python writer, so the output is
byte-for-byte the same on every run.   Usage: python3 Scripts/make_diabetes.py
"""
import os
import random

from sklearn.datasets import load_diabetes

from make_digits import example, float_feature, write_splits

SEED = 20240601
VAL_TOTAL = 88
TRAIN_SHARDS = 2
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Data", "diabetes")


def standardiser(rows):
    """Per-column (mean, standard deviation) of `rows`, the population formula."""
    n = len(rows)
    columns = list(zip(*rows))
    means = [sum(c) / n for c in columns]
    stds = [(sum((v - m) ** 2 for v in c) / n) ** 0.5 for c, m in zip(columns, means)]
    return means, stds


def main():
    data = load_diabetes(scaled=False)
    features = [[float(v) for v in row] for row in data.data]
    targets = [float(t) for t in data.target]
    order = list(range(len(targets)))
    random.Random(SEED).shuffle(order)
    val, train = order[:VAL_TOTAL], order[VAL_TOTAL:]
    means, stds = standardiser([features[i] for i in train])

    def record(i):
        z = [(v - m) / s for v, m, s in zip(features[i], means, stds)]
        return example({"feature": float_feature(z), "target": float_feature([targets[i]])})

    write_splits(ROOT, "diabetes", {"train": train, "val": val}, {"train": TRAIN_SHARDS}, record)


if __name__ == "__main__":
    main()
