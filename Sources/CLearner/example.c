// tf.train.Example access for Swift, over the protobuf-c generated parser.
//
// The Swift side sees only an opaque `tl_example` handle and typed copy/look-up calls, so the
// generated structs (and their header, kept outside include/) never leak into the module map.
// protobuf-c's unpacker accepts repeated scalars both packed and unpacked, as the wire format
// requires, so records from any writer parse.
#include "clearner.h"
#include "example.pb-c.h"

#include <stdlib.h>
#include <string.h>

struct tl_example {
    Tensorflow__Example *msg;
};

int tl_example_parse(const uint8_t *data, size_t len, tl_example **out) {
    if (out == NULL) return 1;
    *out = NULL;
    if (data == NULL && len > 0) return 1;
    // protobuf-c reads nothing when len == 0, but wants a non-NULL pointer.
    static const uint8_t empty = 0;
    Tensorflow__Example *msg = tensorflow__example__unpack(NULL, len, len > 0 ? data : &empty);
    if (msg == NULL) return 2;
    tl_example *ex = malloc(sizeof *ex);
    if (ex == NULL) {
        tensorflow__example__free_unpacked(msg, NULL);
        return 3;
    }
    ex->msg = msg;
    *out = ex;
    return 0;
}

void tl_example_free(tl_example *ex) {
    if (ex == NULL) return;
    tensorflow__example__free_unpacked(ex->msg, NULL);
    free(ex);
}

static const Tensorflow__Features *features_of(const tl_example *ex) {
    return (ex != NULL && ex->msg != NULL) ? ex->msg->features : NULL;
}

size_t tl_example_feature_count(const tl_example *ex) {
    const Tensorflow__Features *f = features_of(ex);
    return f != NULL ? f->n_feature : 0;
}

const char *tl_example_feature_key(const tl_example *ex, size_t i) {
    const Tensorflow__Features *f = features_of(ex);
    if (f == NULL || i >= f->n_feature || f->feature[i] == NULL) return NULL;
    return f->feature[i]->key;
}

/// The feature stored under `key`. A map may repeat a key on the wire; as in every protobuf
/// runtime the last entry wins, hence the backwards scan. Linear: Examples hold a handful of keys.
static const Tensorflow__Feature *lookup(const tl_example *ex, const char *key) {
    const Tensorflow__Features *f = features_of(ex);
    if (f == NULL || key == NULL) return NULL;
    for (size_t i = f->n_feature; i-- > 0;) {
        const Tensorflow__Features__FeatureEntry *e = f->feature[i];
        if (e != NULL && e->key != NULL && strcmp(e->key, key) == 0) return e->value;
    }
    return NULL;
}

int tl_example_find(const tl_example *ex, const char *key, size_t *count) {
    const Tensorflow__Feature *feat = lookup(ex, key);
    size_t n = 0;
    int kind = TL_FEATURE_NONE;
    if (feat != NULL) {
        switch (feat->kind_case) {
        case TENSORFLOW__FEATURE__KIND_BYTES_LIST:
            kind = TL_FEATURE_BYTES;
            n = feat->bytes_list != NULL ? feat->bytes_list->n_value : 0;
            break;
        case TENSORFLOW__FEATURE__KIND_FLOAT_LIST:
            kind = TL_FEATURE_FLOAT;
            n = feat->float_list != NULL ? feat->float_list->n_value : 0;
            break;
        case TENSORFLOW__FEATURE__KIND_INT64_LIST:
            kind = TL_FEATURE_INT64;
            n = feat->int64_list != NULL ? feat->int64_list->n_value : 0;
            break;
        default:
            break; // A Feature with no list set carries no values: report it as absent.
        }
    }
    if (count != NULL) *count = n;
    return kind;
}

long tl_example_copy_floats(const tl_example *ex, const char *key, float *out, size_t n) {
    const Tensorflow__Feature *feat = lookup(ex, key);
    if (feat == NULL || feat->kind_case != TENSORFLOW__FEATURE__KIND_FLOAT_LIST) return -1;
    const Tensorflow__FloatList *list = feat->float_list;
    size_t have = list != NULL ? list->n_value : 0;
    size_t k = have < n ? have : n;
    if (k > 0) memcpy(out, list->value, k * sizeof(float));
    return (long)k;
}

long tl_example_copy_int64s(const tl_example *ex, const char *key, int64_t *out, size_t n) {
    const Tensorflow__Feature *feat = lookup(ex, key);
    if (feat == NULL || feat->kind_case != TENSORFLOW__FEATURE__KIND_INT64_LIST) return -1;
    const Tensorflow__Int64List *list = feat->int64_list;
    size_t have = list != NULL ? list->n_value : 0;
    size_t k = have < n ? have : n;
    if (k > 0) memcpy(out, list->value, k * sizeof(int64_t));
    return (long)k;
}

int tl_example_bytes(const tl_example *ex, const char *key, size_t index, const uint8_t **data, size_t *len) {
    const Tensorflow__Feature *feat = lookup(ex, key);
    if (feat == NULL || feat->kind_case != TENSORFLOW__FEATURE__KIND_BYTES_LIST) return 1;
    const Tensorflow__BytesList *list = feat->bytes_list;
    if (list == NULL || index >= list->n_value) return 2;
    if (data != NULL) *data = list->value[index].data;
    if (len != NULL) *len = list->value[index].len;
    return 0;
}
