#!/usr/bin/env python3
"""Builds Data/digits-attributes, a multi-label data set, from scikit-learn's bundled digits.

The samples and split of Data/digits (same seed, same order), each image stored as 64 raw bytes
and labelled with three yes/no attributes of its digit:
  image:      bytes, 1 value: the 8x8 image row-major, byte = round(count * 255 / 16)
  attributes: int64 list of 3 values: [digit is even, digit >= 5, digit has a closed loop (0, 6, 8, 9)]
  label:      int64 list of 1 value, the digit (kept for reference)

UCI ML hand-written digits (E. Alpaydin, C. Kaynak; CC BY 4.0). No network is needed; the output is
byte-for-byte the same on every run.   Usage: python3 Scripts/make_digits_attributes.py
"""
import os
import random

from sklearn.datasets import load_digits

from make_digits import SEED, TRAIN_SHARDS, VAL_TOTAL, example, field, int64_feature, stratified_split, write_splits

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Data", "digits-attributes")
LOOPED = {0, 6, 8, 9}


def attributes(digit):
    return [int(digit % 2 == 0), int(digit >= 5), int(digit in LOOPED)]


def bytes_feature(value):
    return field(1, field(1, value))


def main():
    digits = load_digits()
    images = [bytes(round(int(p) * 255 / 16) for p in img.reshape(-1)) for img in digits.images]
    labels = [int(y) for y in digits.target]
    train, val = stratified_split(labels, VAL_TOTAL, random.Random(SEED))

    def record(i):
        return example({"image": bytes_feature(images[i]), "attributes": int64_feature(attributes(labels[i])),
                        "label": int64_feature([labels[i]])})

    write_splits(ROOT, "digits-attributes", {"train": train, "val": val}, {"train": TRAIN_SHARDS}, record)


if __name__ == "__main__":
    main()
