#!/usr/bin/env python3
"""Builds the token-sequence example data set, Data/tokens: synthetic sequences for the
transformer classifier (Configs/tokens-transformer.yml).

Each sample is 16 tokens drawn uniformly from a vocabulary of 16. A fixed random map sends each
token to one of 4 groups (4 tokens each); the label is the group that holds the most of the
sample's first 8 tokens (the last 8 are distractors). Samples whose two largest groups (in the
first half) are within one token of each other are redrawn, so every label is well defined. A
model must learn which tokens share a group, and count them in the first half only: a
bag-of-tokens model cannot tell the halves apart, so positions matter. Chance is 25 %.

Writes TFRecord shards of tf.train.Examples with
  tokens: float list of 16 token indices (0..15), as the Embedding layer reads them
  label:  int64 list of 1 value, the group (0..3)
with a fixed seed: 3000 training samples in 2 shards and 600 validation samples:
  Data/tokens/train/tokens-train-0000K-of-00002.tfrecord
  Data/tokens/val/tokens-val-00000-of-00001.tfrecord
Byte-for-byte the same on every run (make_digits.py's plain-Python writer).
Usage: python3 Scripts/make_tokens.py
"""
import os
import random

from make_digits import example, float_feature, int64_feature, write_splits

SEED = 20261204
VOCABULARY = 16
GROUPS = 4
LENGTH = 16
TRAIN, VAL = 3000, 600
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Data", "tokens")


def main():
    rng = random.Random(SEED)
    tokens = list(range(VOCABULARY))
    rng.shuffle(tokens)
    group = {t: i % GROUPS for i, t in enumerate(tokens)}
    samples = []
    while len(samples) < TRAIN + VAL:
        seq = [rng.randrange(VOCABULARY) for _ in range(LENGTH)]
        counts = [sum(1 for t in seq[: LENGTH // 2] if group[t] == g) for g in range(GROUPS)]
        ranked = sorted(counts, reverse=True)
        if ranked[0] - ranked[1] < 2:
            continue
        samples.append((seq, counts.index(ranked[0])))

    def record(i):
        seq, label = samples[i]
        return example({"tokens": float_feature([float(t) for t in seq]), "label": int64_feature([label])})

    order = list(range(len(samples)))
    write_splits(ROOT, "tokens", {"train": order[:TRAIN], "val": order[TRAIN:]}, {"train": 2}, record)


if __name__ == "__main__":
    main()
