#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora (Fuzz/Corpus/<target>/) and dictionaries (Fuzz/Dict/)
from the repository's test fixtures and shipped configs: small valid and near-valid inputs.

Run from anywhere: python3 Fuzz/make-seeds.py. It replaces the seeds it writes, and leaves
other files in the corpus folders (regression inputs) alone.
"""
import hashlib
import json
import os
import re
import struct

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
FIX = os.path.join(ROOT, "Tests/LearnerTests/Fixtures")
CORPUS = os.path.join(ROOT, "Fuzz/Corpus")
DICT = os.path.join(ROOT, "Fuzz/Dict")


def read(path):
    with open(os.path.join(ROOT, path), "rb") as f:
        return f.read()


def seed(target, name, data):
    os.makedirs(os.path.join(CORPUS, target), exist_ok=True)
    with open(os.path.join(CORPUS, target, "seed-" + name), "wb") as f:
        f.write(data)


def dictionary(target, entries):
    os.makedirs(DICT, exist_ok=True)
    with open(os.path.join(DICT, target + ".dict"), "w") as f:
        for e in entries:
            f.write('"' + "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "\\x%02X" % ord(c) for c in e) + '"\n')


# CRC-32C (Castagnoli) and TFRecord's masked form.
_TABLE = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    _TABLE.append(c)


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked(data):
    c = crc32c(data)
    return ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def frame(payload):
    length = struct.pack("<Q", len(payload))
    return length + struct.pack("<I", masked(length)) + payload + struct.pack("<I", masked(payload))


def records(path):
    data, out, i = read(path), [], 0
    while i < len(data):
        (n,) = struct.unpack("<Q", data[i : i + 8])
        out.append(data[i + 12 : i + 12 + n])
        i += 16 + n
    return out


# tfrecord: mode byte (bits 0-1: detect, none, GZIP, ZLIB; bit 2: small buffer), then the file.
examples = records("Tests/LearnerTests/Fixtures/tf_examples.tfrecord")
plain = b"".join(frame(r) for r in examples[:3])
seed("tfrecord", "plain", b"\x00" + plain)
seed("tfrecord", "plain-small-buffer", b"\x05" + plain)
seed("tfrecord", "gzip", b"\x00" + read("Tests/LearnerTests/Fixtures/tf_examples.tfrecord.gz"))
seed("tfrecord", "zlib-forced", b"\x03" + read("Tests/LearnerTests/Fixtures/tf_examples.zlib"))
seed("tfrecord", "empty-record", b"\x01" + frame(b""))
seed("tfrecord", "bad-data-crc", b"\x00" + frame(b"abc")[:-1] + b"\x00" + frame(b"next"))
seed("tfrecord", "truncated", b"\x00" + plain[:60])

# example: serialized tf.train.Example records (floats, int64s, bytes), whole and cut.
for i, r in enumerate(examples[:4]):
    seed("example", "record-%d" % i, r)
seed("example", "record-0-cut", examples[0][: len(examples[0]) // 2])
seed("example", "empty", b"")
dictionary("example", ["\x0a", "\x12", "\x1a", "\x22", "\x0d", "\x08", "\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01",
                       "label", "image/encoded", "features"])


# safetensors: 8-byte header length, JSON header, little-endian data.
def safetensors(tensors, metadata=None):
    header, payload = {}, b""
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(payload), len(payload) + len(data)]}
        payload += data
    if metadata is not None:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(text)) + text + payload


seed("safetensors", "f32", safetensors({"w": ("F32", [2, 2], struct.pack("<4f", 1, -2, 3.5, 0))}, {"format": "pt"}))
seed("safetensors", "dtypes", safetensors({
    "a": ("F16", [2], struct.pack("<2e", 1.5, -2)), "b": ("BF16", [1], b"\x80\x3f"),
    "c": ("F64", [1], struct.pack("<d", 0.25)), "d": ("I64", [1, 1], struct.pack("<q", -7)),
    "e": ("I32", [], struct.pack("<i", 3)), "z": ("F32", [0, 3], b""),
}))
seed("safetensors", "empty-header", safetensors({}))
overlap = b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
seed("safetensors", "overlap", struct.pack("<Q", len(overlap)) + overlap + b"\0\0\0\0")
seed("safetensors", "torch-mlp", read("Tests/LearnerTests/Fixtures/checkpoint/torch_mlp.safetensors"))
dictionary("safetensors", ["dtype", "shape", "data_offsets", "__metadata__", "F32", "F16", "BF16", "F64", "I64",
                           "I32", "U8", "\"", "[", "]", "{", "}", ":", ",", "-1", "9223372036854775807",
                           "4294967296", "1e30"])

# config: the shipped configs, the small broken ones, and one with an override.
for name in sorted(os.listdir(os.path.join(ROOT, "Configs"))):
    if name.endswith(".yml"):
        seed("config", name, read("Configs/" + name))
for name in sorted(os.listdir(os.path.join(ROOT, "Tests/Fixtures/broken-configs"))):
    data = read("Tests/Fixtures/broken-configs/" + name)
    if len(data) <= 2048:
        seed("config", "broken-" + name, data)
seed("config", "override.yml", read("Configs/digits-mlp.yml") + b"#override training.epochs=2\n"
     b"#override model.layers.0.units=[1, {a: b}]\n")
seed("config", "mixed-precision.yml", read("Configs/digits-mlp.yml") + b"#override training.precision=fp16\n"
     b"#override training.loss_scale={initial: 1024, growth_interval: 5, dynamic: true}\n")
keys = {b"precision", b"loss_scale", b"initial", b"growth_factor", b"backoff_factor", b"growth_interval", b"dynamic"}
for d in ["Configs", "Tests/Fixtures/broken-configs"]:
    for name in os.listdir(os.path.join(ROOT, d)):
        if name.endswith(".yml"):
            keys.update(re.findall(rb"^\s*-?\s*([a-z_]+):", read(d + "/" + name), re.M))
dictionary("config", sorted(k.decode() + ":" for k in keys) + ["#override ", "&a ", "*a", "[", "{", "- ", "---",
                                                                 "!!str ", "true", "null", ".inf", "1e400", "-1",
                                                                 "fp32", "bf16", "fp16"])

# image: mode byte (bits 0-1 channels, bit 2 fast DCT, bit 3 reusable buffer), then the blob.
for i, name in enumerate(["grey.jpg", "rgb.jpg", "grey.png", "rgb.png", "rgba.png", "palette.png", "grey16.png",
                          "rgb16.png"]):
    seed("image", name, bytes([i % 16]) + read("Tests/LearnerTests/Fixtures/images/" + name))
seed("image", "rgb.jpg-cut", b"\x0c" + read("Tests/LearnerTests/Fixtures/images/rgb.jpg")[:300])
dictionary("image", ["\x89PNG\x0d\x0a\x1a\x0a", "IHDR", "IDAT", "IEND", "PLTE", "tRNS", "gAMA", "\xff\xd8\xff",
                     "\xff\xc0", "\xff\xc2", "\xff\xc4", "\xff\xda", "\xff\xdb", "\xff\xdd", "\xff\xd9", "\xff\xe0"])

# state: a checkpoint folder's state.json, at an epoch's end and within one.
state = {"epoch": 3, "globalStep": 90, "seed": 7, "learningRate": 0.01, "optimizer": "adam", "optimizerStepCount": 90,
         "optimizerSteps": {"dense.weight": 90}, "libraryVersion": "0.1.0", "values": {"val_loss": 0.5}}
seed("state", "epoch-end.json", json.dumps(state, sort_keys=True).encode())
within = dict(state, batchInEpoch=4, epochLossSum=1.5, epochSamples=128, metricStates=["{}"], emaUpdates=12,
              config="model: {}\n", lossScale=32768.0, lossScaleGrowthTracker=7)
seed("state", "within-epoch.json", json.dumps(within, sort_keys=True).encode())
seed("state", "missing-step.json", json.dumps({k: v for k, v in state.items() if k != "globalStep"}).encode())
dictionary("state", ['"%s":' % k for k in within] + ["null", "true", "18446744073709551615", "-1", "1e39", "[", "{"])
