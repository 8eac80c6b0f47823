#!/usr/bin/env python3
"""Builds the segmentation example data set, Data/shapes: coloured discs, squares and triangles on
noisy backgrounds, with masks in DeepLab's record format (TensorFlow models' build_data.py).

Each 64×64 RGB image holds 1 to 3 shapes of random size, place and colour over a random smooth
background with noise; its mask gives each pixel's class: 0 background, 1 disc, 2 square,
3 triangle (a later shape covers an earlier one). A one-pixel band around each shape is 255, the
ignore label, as DeepLab's boundaries are.

Writes TFRecord shards of tf.train.Examples with DeepLab's keys:
  image/encoded (PNG, RGB), image/filename, image/format ("png"), image/height, image/width,
  image/segmentation/class/encoded (PNG, one channel of class indices), image/segmentation/class/format ("png")
with a fixed seed: 256 training images in 2 shards, 64 validation images:
  Data/shapes/train/shapes-train-0000K-of-00002.tfrecord
  Data/shapes/val/shapes-val-00000-of-00001.tfrecord

and the image-to-image example set, Data/shapes-denoise: 32×32 grey renderings of such shapes
(image/clean/encoded, PNG) and the same with Gaussian noise of standard deviation 25/255 added
(image/encoded, PNG), 256 training pairs in 2 shards and 64 validation pairs, for
Configs/unet-shapes-denoising.yml.

Byte-for-byte the same on every run (make_digits.py's writer; PNGs by zlib, no packages needed).
Usage: python3 Scripts/make_shapes.py
"""
import os
import random
import struct
import zlib

from make_digits import example, field, int64_feature, write_splits

SEED = 20261205
SIDE = 64
TRAIN, VAL = 256, 64
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Data", "shapes")


def bytes_feature(values):
    return field(1, b"".join(field(1, v) for v in values))


def png(rows, channels):
    """An 8-bit PNG (colour type 0 grey or 2 RGB) of `rows`, lists of channel values per row
    (each row `SIDE` pixels wide, or as wide as it is)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + bytes(row) for row in rows)
    header = struct.pack(">IIBBBBB", len(rows[0]) // channels, len(rows), 8, 0 if channels == 1 else 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def inside(kind, cx, cy, r, x, y):
    dx, dy = x + 0.5 - cx, y + 0.5 - cy
    if kind == 1:
        return dx * dx + dy * dy <= r * r
    if kind == 2:
        return abs(dx) <= r * 0.85 and abs(dy) <= r * 0.85
    # A triangle pointing up: below the two slanted edges, above the base.
    return dy <= r * 0.8 and dy >= -r + 2 * abs(dx) * 1.1


def sample(rng):
    base = [rng.randint(30, 200) for _ in range(3)]
    slope = [rng.uniform(-1.5, 1.5) for _ in range(3)]
    image = [[[min(255, max(0, int(base[c] + slope[c] * (x - y) + rng.gauss(0, 2)))) for c in range(3)] for x in range(SIDE)]
             for y in range(SIDE)]
    mask = [[0] * SIDE for _ in range(SIDE)]
    for _ in range(rng.randint(1, 3)):
        kind = rng.randint(1, 3)
        r = rng.uniform(7, 15)
        cx, cy = rng.uniform(r, SIDE - r), rng.uniform(r, SIDE - r)
        colour = [rng.randint(0, 255) for _ in range(3)]
        while sum(abs(colour[c] - base[c]) for c in range(3)) < 150:
            colour = [rng.randint(0, 255) for _ in range(3)]
        for y in range(SIDE):
            for x in range(SIDE):
                if inside(kind, cx, cy, r, x, y):
                    mask[y][x] = kind
                    image[y][x] = [min(255, max(0, int(colour[c] + rng.gauss(0, 2)))) for c in range(3)]
    # The ignore band: pixels next to a pixel of another class.
    band = [[mask[y][x] for x in range(SIDE)] for y in range(SIDE)]
    for y in range(SIDE):
        for x in range(SIDE):
            for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= ny < SIDE and 0 <= nx < SIDE and mask[ny][nx] != mask[y][x] and mask[y][x] != 0:
                    band[y][x] = 255
    return image, band


def main():
    rng = random.Random(SEED)
    samples = [sample(rng) for _ in range(TRAIN + VAL)]

    def record(i):
        image, mask = samples[i]
        return example({
            "image/encoded": bytes_feature([png([sum(row, []) for row in image], 3)]),
            "image/filename": bytes_feature([f"shape-{i:04d}.png".encode()]),
            "image/format": bytes_feature([b"png"]),
            "image/height": int64_feature([SIDE]),
            "image/width": int64_feature([SIDE]),
            "image/segmentation/class/encoded": bytes_feature([png(mask, 1)]),
            "image/segmentation/class/format": bytes_feature([b"png"]),
        })

    order = list(range(len(samples)))
    write_splits(ROOT, "shapes", {"train": order[:TRAIN], "val": order[TRAIN:]}, {"train": 2}, record)


DENOISE_SIDE = 32


def denoise_pair(rng):
    """A grey rendering of one to three shapes (smooth background, flat shapes) and its noisy copy."""
    base = rng.randint(40, 200)
    slope = rng.uniform(-2, 2)
    clean = [[base + slope * (x - y) for x in range(DENOISE_SIDE)] for y in range(DENOISE_SIDE)]
    for _ in range(rng.randint(1, 3)):
        kind = rng.randint(1, 3)
        r = rng.uniform(4, 8)
        cx, cy = rng.uniform(r, DENOISE_SIDE - r), rng.uniform(r, DENOISE_SIDE - r)
        level = rng.randint(0, 255)
        for y in range(DENOISE_SIDE):
            for x in range(DENOISE_SIDE):
                if inside(kind, cx, cy, r, x, y):
                    clean[y][x] = level
    clean = [[min(255, max(0, int(round(v)))) for v in row] for row in clean]
    noisy = [[min(255, max(0, int(round(v + rng.gauss(0, 25))))) for v in row] for row in clean]
    return noisy, clean


def main_denoise():
    rng = random.Random(SEED + 1)
    pairs = [denoise_pair(rng) for _ in range(TRAIN + VAL)]

    def record(i):
        noisy, clean = pairs[i]
        return example({
            "image/encoded": bytes_feature([png(noisy, 1)]),
            "image/clean/encoded": bytes_feature([png(clean, 1)]),
            "image/filename": bytes_feature([f"noisy-{i:04d}.png".encode()]),
        })

    order = list(range(len(pairs)))
    root = os.path.join(os.path.dirname(ROOT), "shapes-denoise")
    write_splits(root, "shapes-denoise", {"train": order[:TRAIN], "val": order[TRAIN:]}, {"train": 2}, record)


if __name__ == "__main__":
    main()
    main_denoise()
