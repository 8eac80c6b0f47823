#!/usr/bin/env python3
"""Builds the embedded default data set, Data/digits, from scikit-learn's bundled digits.

UCI ML hand-written digits (E. Alpaydin, C. Kaynak; CC BY 4.0) as shipped inside scikit-learn:
1797 8x8 grey images with values 0..16, 10 classes. No network is needed.

Writes TFRecord shards of tf.train.Examples with
  image: float list of 64 values, pixel / 16.0, row-major, in [0, 1]
  label: int64 list of 1 value, the digit 0..9
split per class with a fixed seed into 1437 training and 360 validation samples:
  Data/digits/train/digits-train-00000-of-00002.tfrecord, digits-train-00001-of-00002.tfrecord
  Data/digits/val/digits-val-00000-of-00001.tfrecord

The TFRecord and protobuf encoding is written out here in plain Python (struct and a CRC32C
table), so the script needs only scikit-learn, and its output is byte-for-byte the same on
every run.   Usage: python3 Scripts/make_digits.py
"""
import os
import random
import struct

SEED = 20240531
VAL_TOTAL = 360
TRAIN_SHARDS = 2
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Data", "digits")


# ------------------------------------------------------------------ TFRecord framing

def _crc32c_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


CRC_TABLE = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked_crc32c(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def write_records(path, records):
    with open(path, "wb") as f:
        for data in records:
            length = struct.pack("<Q", len(data))
            f.write(length + struct.pack("<I", masked_crc32c(length)) + data + struct.pack("<I", masked_crc32c(data)))


# ------------------------------------------------------------------ tf.train.Example encoding

def varint(v):
    v &= (1 << 64) - 1  # negative int64 as two's complement, as protobuf does
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def field(number, payload):
    """A length-delimited field (wire type 2)."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def float_feature(values):
    packed = b"".join(struct.pack("<f", v) for v in values)
    return field(2, field(1, packed) if values else b"")


def int64_feature(values):
    packed = b"".join(varint(v) for v in values)
    return field(3, field(1, packed) if values else b"")


def example(features):
    """Example{features=1: Features{feature=1: map<string, Feature>}}, keys in sorted order."""
    entries = b"".join(field(1, field(1, key.encode()) + field(2, value)) for key, value in sorted(features.items()))
    return field(1, entries)


# ------------------------------------------------------------------ split and write

def stratified_split(labels, val_total, rng):
    """Per-class shuffle; each class gives its share of `val_total` (largest remainder rounding)."""
    by_class = {}
    for i, y in enumerate(labels):
        by_class.setdefault(y, []).append(i)
    n = len(labels)
    quotas = {c: len(ix) * val_total / n for c, ix in by_class.items()}
    take = {c: int(q) for c, q in quotas.items()}
    for c in sorted(quotas, key=lambda c: (-(quotas[c] - take[c]), c))[: val_total - sum(take.values())]:
        take[c] += 1
    train, val = [], []
    for c in sorted(by_class):
        ix = by_class[c][:]
        rng.shuffle(ix)
        val += ix[: take[c]]
        train += ix[take[c]:]
    rng.shuffle(train)
    rng.shuffle(val)
    return train, val


def main():
    # Imported here, so that the other data scripts can use this file's writer without scikit-learn.
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = [[int(p) for p in img.reshape(-1)] for img in digits.images]
    labels = [int(y) for y in digits.target]
    train, val = stratified_split(labels, VAL_TOTAL, random.Random(SEED))

    def record(i):
        return example({"image": float_feature([p / 16.0 for p in images[i]]), "label": int64_feature([labels[i]])})

    write_splits(ROOT, "digits", {"train": train, "val": val}, {"train": TRAIN_SHARDS}, record)


def write_splits(root, prefix, splits, shard_counts, record):
    """Writes root/<split>/<prefix>-<split>-KKKKK-of-NNNNN.tfrecord, the samples of each split dealt
    round-robin to its shards (one shard unless `shard_counts` says otherwise)."""
    for name, samples in splits.items():
        count = shard_counts.get(name, 1)
        os.makedirs(os.path.join(root, name), exist_ok=True)
        for k in range(count):
            ix = samples[k::count]
            path = os.path.join(root, name, f"{prefix}-{name}-{k:05d}-of-{count:05d}.tfrecord")
            write_records(path, [record(i) for i in ix])
            print(f"{os.path.relpath(path)}: {len(ix)} records")


if __name__ == "__main__":
    main()
