"""TFRecord read + parse throughput with tf.data, the peer of `tefla-data bench-read`.

  python tf_data_read.py make FILE [--records N] [--image-bytes B] [--floats F]
      writes FILE with tf.io.TFRecordWriter: each record an Example with `image/encoded`
      (B random bytes), `image/class/label` (int64) and `features` (F floats).
  python tf_data_read.py read FILE [--repeats R] [--loop reduce|python|batched]
      times one pass of TFRecordDataset(FILE).map(parse_single_example) (median of R after a
      warm-up pass) and prints one JSON line: records/s and MB/s of record payload.

  python tf_data_read.py make-jpeg FILE [--records N]
      writes N smooth 320x240 RGB JPEGs (quality 90) as `image/encoded`.
  python tf_data_read.py decode FILE [--repeats R] [--dct-method M] [--threads T]
      times decode_jpeg -> float32 -> resize 256x256 (bilinear) -> random_crop 224 ->
      random_flip_left_right, one image at a time, inside Dataset.reduce; prints images/s.
      M is decode_jpeg's dct_method ("" = its default, INTEGER_FAST; or INTEGER_ACCURATE);
      T > 0 caps TensorFlow's threads (tf.data's pool and intra-op parallelism), 0 leaves them.

Loops: `reduce` runs the pass inside TensorFlow (Dataset.reduce, no Python per record);
`python` iterates the dataset eagerly (for r in ds), as a training loop would; `batched`
parses 256 records at a time with tf.io.parse_example (TensorFlow's fastest idiom).
"""
import argparse
import json
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def spec(image_bytes, floats):
    return {
        "image/encoded": tf.io.FixedLenFeature([], tf.string),
        "image/class/label": tf.io.FixedLenFeature([], tf.int64),
        "features": tf.io.FixedLenFeature([floats], tf.float32),
    }


def make(args):
    rng = np.random.default_rng(0)
    with tf.io.TFRecordWriter(args.file) as writer:
        for i in range(args.records):
            example = tf.train.Example(features=tf.train.Features(feature={
                "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(
                    value=[rng.integers(0, 256, args.image_bytes, dtype=np.uint8).tobytes()])),
                "image/class/label": tf.train.Feature(int64_list=tf.train.Int64List(value=[i % 10])),
                "features": tf.train.Feature(float_list=tf.train.FloatList(
                    value=rng.standard_normal(args.floats).astype(np.float32))),
            }))
            writer.write(example.SerializeToString())
    print(json.dumps({"file": args.file, "records": args.records, "bytes": os.path.getsize(args.file)}))


def read(args):
    features = spec(args.image_bytes, args.floats)
    if args.loop == "batched":
        ds = tf.data.TFRecordDataset(args.file).batch(256).map(lambda s: tf.io.parse_example(s, features))
        count = lambda r: tf.shape(r["image/class/label"], out_type=tf.int64)[0]  # noqa: E731
    else:
        ds = tf.data.TFRecordDataset(args.file).map(lambda s: tf.io.parse_single_example(s, features))
        count = lambda r: tf.constant(1, tf.int64)  # noqa: E731

    def one_pass():
        start = time.perf_counter()
        if args.loop == "python":
            records = 0
            for _ in ds:
                records += 1
        else:
            records = int(ds.reduce(tf.constant(0, tf.int64), lambda acc, r: acc + count(r)))
        return time.perf_counter() - start, records

    one_pass()  # warm-up: page cache, graph tracing
    runs = [one_pass() for _ in range(args.repeats)]
    seconds = statistics.median(r[0] for r in runs)
    records = runs[0][1]
    payload = os.path.getsize(args.file) - 16 * records  # framing: 12 bytes before, 4 after each record
    print(json.dumps({
        "impl": f"tf.data ({args.loop})", "tf": tf.__version__, "records": records, "bytes": payload,
        "seconds": seconds, "records_per_s": records / seconds, "mb_per_s": payload / seconds / 1e6,
    }))


def make_jpeg(args):
    y, x = np.mgrid[0:240, 0:320]
    with tf.io.TFRecordWriter(args.file) as writer:
        for i in range(args.records):
            image = np.stack([(x + 3 * i) % 256, (y + 5 * i) % 256, (x + y + i) % 256], -1).astype(np.uint8)
            blob = tf.io.encode_jpeg(image, quality=90).numpy()
            example = tf.train.Example(features=tf.train.Features(feature={
                "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[blob])),
                "image/class/label": tf.train.Feature(int64_list=tf.train.Int64List(value=[i % 10])),
            }))
            writer.write(example.SerializeToString())
    print(json.dumps({"file": args.file, "records": args.records, "bytes": os.path.getsize(args.file)}))


def decode(args):
    features = {"image/encoded": tf.io.FixedLenFeature([], tf.string)}

    def augment(serialized):
        blob = tf.io.parse_single_example(serialized, features)["image/encoded"]
        decoded = tf.io.decode_jpeg(blob, channels=3, dct_method=args.dct_method)
        image = tf.image.convert_image_dtype(decoded, tf.float32)
        image = tf.image.resize(image, [256, 256], method="bilinear")
        image = tf.image.random_crop(image, [224, 224, 3])
        return tf.image.random_flip_left_right(image)

    ds = tf.data.TFRecordDataset(args.file).map(augment)
    if args.threads > 0:
        options = tf.data.Options()
        options.threading.private_threadpool_size = args.threads
        options.threading.max_intra_op_parallelism = args.threads
        ds = ds.with_options(options)

    def one_pass():
        start = time.perf_counter()
        images = int(ds.reduce(tf.constant(0, tf.int64), lambda acc, image: acc + 1))
        return time.perf_counter() - start, images

    one_pass()
    runs = [one_pass() for _ in range(args.repeats)]
    seconds = statistics.median(r[0] for r in runs)
    method = args.dct_method or "default"
    threads = args.threads or "all"
    print(json.dumps({"impl": f"tf.data decode (dct {method}, threads {threads})", "tf": tf.__version__,
                      "images": runs[0][1], "seconds": seconds, "images_per_s": runs[0][1] / seconds}))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["make", "read", "make-jpeg", "decode"])
    parser.add_argument("file")
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--image-bytes", type=int, default=4096)
    parser.add_argument("--floats", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--loop", choices=["reduce", "python", "batched"], default="reduce")
    parser.add_argument("--dct-method", default="", choices=["", "INTEGER_FAST", "INTEGER_ACCURATE"])
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    {"make": make, "read": read, "make-jpeg": make_jpeg, "decode": decode}[args.mode](args)


if __name__ == "__main__":
    main()
