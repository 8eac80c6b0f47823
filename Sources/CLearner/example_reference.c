// The protobuf-c generated tf.train.Example parser as a reference for the wire scan in example.c:
// tests feed both the same (valid, mutated, truncated) records and ask whether they agree.
#include "clearner.h"
#include "example.pb-c.h"

#include <string.h>

/// Whether entry i of `ex` holds what protobuf-c's `feature` does.
static int same_feature(const tl_example *ex, size_t i, const Tensorflow__Features__FeatureEntry *ref) {
    size_t key_len;
    const uint8_t *key = tl_example_feature_key(ex, i, &key_len);
    const char *ref_key = ref->key != NULL ? ref->key : "";
    // protobuf-c keeps keys as C strings, cut at a NUL byte: compare what it can hold.
    const uint8_t *nul = key_len > 0 ? memchr(key, 0, key_len) : NULL;
    if (nul != NULL) key_len = (size_t)(nul - key);
    if (key_len != strlen(ref_key) || memcmp(key, ref_key, key_len) != 0) return 0;
    size_t count;
    int kind = tl_example_entry(ex, i, &count);
    const Tensorflow__Feature *f = ref->value;
    int ref_kind = TL_FEATURE_NONE;
    if (f != NULL) {
        switch (f->kind_case) {
        case TENSORFLOW__FEATURE__KIND_BYTES_LIST: ref_kind = TL_FEATURE_BYTES; break;
        case TENSORFLOW__FEATURE__KIND_FLOAT_LIST: ref_kind = TL_FEATURE_FLOAT; break;
        case TENSORFLOW__FEATURE__KIND_INT64_LIST: ref_kind = TL_FEATURE_INT64; break;
        default: break;
        }
    }
    if (kind != ref_kind) return 0;
    switch (kind) {
    case TL_FEATURE_FLOAT: {
        if (count != f->float_list->n_value) return 0;
        if (count == 0) return 1;
        float all[count];
        if (tl_example_entry_floats(ex, i, all, count) != (long)count) return 0;
        return memcmp(all, f->float_list->value, count * sizeof(float)) == 0;
    }
    case TL_FEATURE_INT64: {
        if (count != f->int64_list->n_value) return 0;
        if (count == 0) return 1;
        int64_t all[count];
        if (tl_example_entry_int64s(ex, i, all, count) != (long)count) return 0;
        return memcmp(all, f->int64_list->value, count * sizeof(int64_t)) == 0;
    }
    case TL_FEATURE_BYTES: {
        if (count != f->bytes_list->n_value) return 0;
        for (size_t k = 0; k < count; k++) {
            tl_bytes_view view;
            if (tl_example_entry_bytes(ex, i, k, &view, 1) != 1) return 0;
            const ProtobufCBinaryData *want = &f->bytes_list->value[k];
            if (view.len != want->len || (view.len > 0 && memcmp(view.data, want->data, view.len) != 0)) return 0;
        }
        return 1;
    }
    default:
        return 1;
    }
}

int tl_example_reference_check(const uint8_t *data, size_t len) {
    static const uint8_t empty = 0;
    const uint8_t *bytes = len > 0 ? data : &empty;
    Tensorflow__Example *ref = tensorflow__example__unpack(NULL, len, bytes);
    tl_example *ex = NULL;
    int status = tl_example_parse(bytes, len, &ex);
    int result;
    if (ref == NULL || status != 0) {
        result = (ref == NULL && status != 0) ? 0 : (ref == NULL ? -2 : -1);
    } else {
        size_t n = ref->features != NULL ? ref->features->n_feature : 0;
        result = tl_example_feature_count(ex) == n ? 1 : -3;
        for (size_t i = 0; result == 1 && i < n; i++) {
            if (!same_feature(ex, i, ref->features->feature[i])) result = -4;
        }
    }
    tl_example_free(ex);
    if (ref != NULL) tensorflow__example__free_unpacked(ref, NULL);
    return result;
}
