#!/usr/bin/env python3
"""Builds Data/digits-png: the digits of Data/digits as 32x32 grey PNG images in TFRecords.

Same source (scikit-learn's copy of the UCI digits, CC BY 4.0), same split and same record
order as Scripts/make_digits.py. Each 8x8 image of counts 0..16 becomes a 32x32 8-bit grey PNG:
byte = round(count * 255 / 16), every source pixel a 4x4 block (nearest-neighbour upscaling).
Records are tf.train.Examples as TensorFlow's image data sets write them:
  image/encoded      bytes, the PNG file
  image/format       bytes, b"png"
  image/class/label  int64, the digit 0..9
  image/height       int64, 32
  image/width        int64, 32
Shards:
  Data/digits-png/train/digits-png-train-00000-of-00002.tfrecord, ...-00001-of-00002.tfrecord
  Data/digits-png/val/digits-png-val-00000-of-00001.tfrecord

Needs scikit-learn and numpy; the PNG, protobuf and TFRecord bytes are written here in plain
Python, so every run writes the same files. With --check, reads every record back with
tf.io.parse_single_example and tf.io.decode_png and compares the pixels (needs tensorflow).
  Usage: python3 Scripts/make_digits_png.py [--check]
"""
import argparse
import os
import random
import struct
import sys
import zlib

import numpy as np
from sklearn.datasets import load_digits

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_digits import (  # noqa: E402
    SEED, TRAIN_SHARDS, VAL_TOTAL, example, field, int64_feature, stratified_split, write_records)

SIDE = 32
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Data", "digits-png")


def pixels(counts):
    """8x8 counts 0..16 -> 32x32 uint8, byte = round(count * 255 / 16), 4x4 blocks."""
    grey = np.floor(np.asarray(counts, dtype=np.float64) * 255 / 16 + 0.5).astype(np.uint8)
    return np.kron(grey, np.ones((SIDE // 8, SIDE // 8), dtype=np.uint8))


def png(image):
    """An 8-bit greyscale PNG: IHDR, one IDAT (filter 0 on every row, zlib level 9), IEND."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    height, width = image.shape
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    raw = b"".join(b"\x00" + image[y].tobytes() for y in range(height))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def bytes_feature(values):
    return field(1, b"".join(field(1, v) for v in values))


def record(image, label):
    return example({
        "image/encoded": bytes_feature([png(image)]),
        "image/format": bytes_feature([b"png"]),
        "image/class/label": int64_feature([label]),
        "image/height": int64_feature([image.shape[0]]),
        "image/width": int64_feature([image.shape[1]]),
    })


def check(paths, images, labels):
    """Every record parses in TensorFlow and its PNG decodes to the pixels written."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    spec = {
        "image/encoded": tf.io.FixedLenFeature([], tf.string),
        "image/format": tf.io.FixedLenFeature([], tf.string),
        "image/class/label": tf.io.FixedLenFeature([], tf.int64),
    }
    for path, ix in paths:
        for serialized, i in zip(tf.data.TFRecordDataset(path), ix):
            parsed = tf.io.parse_single_example(serialized, spec)
            decoded = tf.io.decode_png(parsed["image/encoded"], channels=1).numpy()[:, :, 0]
            assert parsed["image/format"].numpy() == b"png"
            assert int(parsed["image/class/label"]) == labels[i]
            assert np.array_equal(decoded, images[i]), path
    print(f"checked with TensorFlow {tf.__version__}: every record parses and decodes to its pixels")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="read everything back with TensorFlow")
    args = parser.parse_args()
    digits = load_digits()
    images = [pixels(img) for img in digits.images]
    labels = [int(y) for y in digits.target]
    train, val = stratified_split(labels, VAL_TOTAL, random.Random(SEED))
    splits = {"train": [train[k::TRAIN_SHARDS] for k in range(TRAIN_SHARDS)], "val": [val]}
    written = []
    for name, shards in splits.items():
        os.makedirs(os.path.join(ROOT, name), exist_ok=True)
        for k, ix in enumerate(shards):
            path = os.path.join(ROOT, name, f"digits-png-{name}-{k:05d}-of-{len(shards):05d}.tfrecord")
            write_records(path, [record(images[i], labels[i]) for i in ix])
            written.append((path, ix))
            print(f"{os.path.relpath(path)}: {len(ix)} records, {os.path.getsize(path)} bytes")
    if args.check:
        check(written, images, labels)


if __name__ == "__main__":
    main()
