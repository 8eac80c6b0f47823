"""ImageNet-style training input with tf.data, the peer of `tefla-data bench-pipeline`.

  python tf_data_pipeline.py make DIR [--images N] [--shards S] [--seed K]
      writes N photo-like RGB JPEGs (quality 90, each side 300-500 px) as S TFRecord shards
      of tf.train.Examples (image/encoded, image/format, image/class/label), with TensorFlow's
      own writer and encoder. The content is not flat colour: 1/f ("pink") noise fields, the
      spectrum of natural images, tinted per image, with a few filled discs and boxes and
      fine noise on top, so a JPEG carries the detail a photo does (about 60-90 KB at 400 px).
  python tf_data_pipeline.py run DIR [--threads T] [--repeats R] [--batch B] [--crop-decode]
      times one pass of TFRecordDataset(shards).map(augment, num_parallel_calls=T).batch(B)
      with T threads (tf.data's private pool; intra-op parallelism 1), where augment is
      parse -> decode_jpeg (RGB) -> a random resized crop (sample_distorted_bounding_box with
      area 0.08-1 and aspect 3/4-4/3, torchvision's RandomResizedCrop) -> bilinear resize to
      224x224 -> random left-right flip -> (x/255 - mean)/std with ImageNet's mean and std.
      --crop-decode uses decode_and_crop_jpeg (decodes only the crop's MCU rows, as
      TensorFlow's own ResNet preprocessing does) instead of decode_jpeg + crop.
      Prints one JSON line: images/s (median of R passes after a warm-up pass).
"""
import argparse
import glob
import json
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


def pink_field(rng, side=512):
    """A side x side x 3 field whose spectrum falls as 1/f (natural images' statistics), 0..1."""
    fy = np.fft.fftfreq(side)[:, None]
    fx = np.fft.fftfreq(side)[None, :]
    f = np.sqrt(fx * fx + fy * fy)
    f[0, 0] = 1
    out = []
    for _ in range(3):
        spectrum = (rng.standard_normal((side, side)) + 1j * rng.standard_normal((side, side))) / f
        field = np.real(np.fft.ifft2(spectrum))
        field = (field - field.min()) / (field.max() - field.min())
        out.append(field)
    return np.stack(out, -1)


def make(args):
    rng = np.random.default_rng(args.seed)
    fields = [pink_field(rng) for _ in range(48)]
    os.makedirs(args.dir, exist_ok=True)
    writers = [tf.io.TFRecordWriter(os.path.join(args.dir, f"photos-{s:05d}-of-{args.shards:05d}.tfrecord"))
               for s in range(args.shards)]
    total = 0
    for i in range(args.images):
        h, w = int(rng.integers(300, 501)), int(rng.integers(300, 501))
        field = fields[int(rng.integers(len(fields)))]
        top, left = int(rng.integers(0, 512 - h + 1)), int(rng.integers(0, 512 - w + 1))
        image = field[top:top + h, left:left + w] * rng.uniform(0.5, 1.2, 3) + rng.uniform(-0.2, 0.2, 3)
        yy, xx = np.mgrid[0:h, 0:w]
        for _ in range(int(rng.integers(2, 6))):
            cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(15, 90)
            mask = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r if rng.random() < 0.5 else \
                (abs(yy - cy) < r) & (abs(xx - cx) < r * rng.uniform(0.4, 1.6))
            image[mask] = image[mask] * 0.4 + rng.uniform(0, 1, 3) * 0.6
        image = image + rng.normal(0, 0.02, image.shape)
        pixels = (np.clip(image, 0, 1) * 255).astype(np.uint8)
        blob = tf.io.encode_jpeg(pixels, quality=90).numpy()
        total += len(blob)
        example = tf.train.Example(features=tf.train.Features(feature={
            "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[blob])),
            "image/format": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"jpeg"])),
            "image/class/label": tf.train.Feature(int64_list=tf.train.Int64List(value=[i % 10])),
        }))
        writers[i % args.shards].write(example.SerializeToString())
    for w in writers:
        w.close()
    print(json.dumps({"dir": args.dir, "images": args.images, "jpeg_bytes": total}))


def run(args):
    features = {"image/encoded": tf.io.FixedLenFeature([], tf.string)}
    mean = tf.constant(MEAN)
    std = tf.constant(STD)

    def augment(serialized):
        blob = tf.io.parse_single_example(serialized, features)["image/encoded"]
        shape = tf.io.extract_jpeg_shape(blob)
        begin, size, _ = tf.image.sample_distorted_bounding_box(
            shape, bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]), min_object_covered=0.0,
            aspect_ratio_range=(3 / 4, 4 / 3), area_range=(0.08, 1.0), max_attempts=10,
            use_image_if_no_bounding_boxes=True)
        if args.crop_decode:
            window = tf.stack([begin[0], begin[1], size[0], size[1]])
            image = tf.io.decode_and_crop_jpeg(blob, window, channels=3)
        else:
            image = tf.slice(tf.io.decode_jpeg(blob, channels=3), begin, size)
        image = tf.image.resize(image, [224, 224], method="bilinear")
        image = tf.image.random_flip_left_right(image)
        return (image / 255.0 - mean) / std

    files = sorted(glob.glob(os.path.join(args.dir, "*.tfrecord")))
    ds = tf.data.TFRecordDataset(files).map(augment, num_parallel_calls=args.threads).batch(args.batch)
    options = tf.data.Options()
    options.threading.private_threadpool_size = args.threads
    options.threading.max_intra_op_parallelism = 1
    ds = ds.with_options(options)

    def one_pass():
        start = time.perf_counter()
        images = int(ds.reduce(tf.constant(0, tf.int64), lambda acc, batch: acc + tf.cast(tf.shape(batch)[0], tf.int64)))
        return time.perf_counter() - start, images

    one_pass()
    runs = [one_pass() for _ in range(args.repeats)]
    seconds = statistics.median(r[0] for r in runs)
    kind = "decode_and_crop_jpeg" if args.crop_decode else "decode_jpeg + crop"
    print(json.dumps({"impl": f"tf.data ({kind}), {args.threads} thread(s)", "tf": tf.__version__, "threads": args.threads,
                      "images": runs[0][1], "seconds": seconds, "images_per_s": runs[0][1] / seconds}))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["make", "run"])
    parser.add_argument("dir")
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--crop-decode", action="store_true")
    args = parser.parse_args()
    {"make": make, "run": run}[args.mode](args)


if __name__ == "__main__":
    main()
