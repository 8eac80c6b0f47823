// tf.train.Example access for Swift: a validating, allocation-light scan of the wire format.
//
// The schema is tiny and fixed:
//   Example  { Features features = 1; }
//   Features { map<string, Feature> feature = 1; }   (entries: key = 1, value = 2)
//   Feature  { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2; Int64List int64_list = 3; } }
//   BytesList { repeated bytes value = 1; }  FloatList { repeated float value = 1; }  Int64List { repeated int64 value = 1; }
// so instead of unpacking into allocated structs (protobuf-c did one malloc per message, string
// and array), one pass checks the whole record and notes, per map entry, where its key and its
// list sit in the caller's bytes; values are decoded only when asked for. Parsing follows
// protobuf's rules: repeated scalars are accepted packed and unpacked, unknown fields are skipped,
// a repeated sub-message merges, a later oneof member replaces an earlier one, a repeated map key
// keeps its last value; truncated fields, bad varints, groups and wrong wire types are rejected.
// The handle borrows the bytes it was parsed from: they must outlive it.
//
// The protobuf-c generated parser stays as the reference `tl_example_reference_check` compares with.
#include "clearner.h"
#include "example.pb-c.h"

#include <stdlib.h>
#include <string.h>

enum { WIRE_VARINT = 0, WIRE_FIXED64 = 1, WIRE_LEN = 2, WIRE_FIXED32 = 5 };

/// One map entry: its key, and the list of its final kind.
typedef struct {
    const uint8_t *key;
    size_t key_len;
    /// The whole FeatureEntry message, re-walked when its values are spread over several lists.
    const uint8_t *body;
    size_t body_len;
    /// The list message (BytesList/FloatList/Int64List) when `lists` == 1.
    const uint8_t *list;
    size_t list_len;
    size_t count;
    int kind;
    int lists;
} entry;

#define INLINE_ENTRIES 8

struct tl_example {
    entry *entries;
    size_t n, cap;
    entry inline_entries[INLINE_ENTRIES];
};

// ---------------------------------------------------------------- wire format

typedef struct {
    const uint8_t *p, *end;
} cursor;

/// Reads a varint of at most `max` bytes (10 for a value, 5 for a tag or a length); 0 when
/// truncated or longer.
static inline int read_varint_of(cursor *c, uint64_t *out, int max) {
    uint64_t v = 0;
    for (int i = 0; i < max; i++) {
        if (c->p >= c->end) return 0;
        uint8_t b = *c->p++;
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *out = v;
            return 1;
        }
    }
    return 0;
}

static inline int read_varint(cursor *c, uint64_t *out) { return read_varint_of(c, out, 10); }

typedef struct {
    uint32_t number;
    int wire;
    const uint8_t *data; // the value: varint bytes, fixed bytes or the length-delimited payload
    size_t len;
} field;

/// The next field: 1 read, 0 at the end, -1 malformed (bad tag, truncation, group, unknown wire type).
static inline int next_field(cursor *c, field *f) {
    if (c->p >= c->end) return 0;
    uint64_t tag;
    // A tag is a 32-bit varint: at most 5 bytes, as protobuf (C++, TensorFlow's parser) and
    // protobuf-c read it; `8A 80 80 80 80 00` is no field 1.
    if (!read_varint_of(c, &tag, 5) || tag > UINT32_MAX || (tag >> 3) == 0) return -1;
    f->number = (uint32_t)(tag >> 3);
    f->wire = (int)(tag & 7);
    f->data = c->p;
    size_t left = (size_t)(c->end - c->p);
    switch (f->wire) {
    case WIRE_VARINT: {
        uint64_t ignored;
        if (!read_varint(c, &ignored)) return -1;
        f->len = (size_t)(c->p - f->data);
        return 1;
    }
    case WIRE_FIXED64:
        if (left < 8) return -1;
        f->len = 8;
        break;
    case WIRE_FIXED32:
        if (left < 4) return -1;
        f->len = 4;
        break;
    case WIRE_LEN: {
        uint64_t n;
        // A length is a 32-bit varint too: at most 5 bytes, as protobuf and protobuf-c read it.
        if (!read_varint_of(c, &n, 5)) return -1;
        f->data = c->p;
        if (n > (uint64_t)(c->end - c->p)) return -1;
        f->len = (size_t)n;
        break;
    }
    default:
        return -1;
    }
    c->p += f->len;
    return 1;
}

static inline cursor cursor_of(const uint8_t *p, size_t len) { return (cursor){p, p + len}; }

/// Counts the values of a list message of `kind`, checking them; -1 when malformed.
static long scan_list(int kind, const uint8_t *p, size_t len) {
    cursor c = cursor_of(p, len);
    field f;
    int r;
    long count = 0;
    while ((r = next_field(&c, &f)) > 0) {
        if (f.number != 1) continue;
        switch (kind) {
        case TL_FEATURE_BYTES:
            if (f.wire != WIRE_LEN) return -1;
            count++;
            break;
        case TL_FEATURE_FLOAT:
            if (f.wire == WIRE_FIXED32) {
                count++;
            } else if (f.wire == WIRE_LEN && f.len % 4 == 0) {
                count += (long)(f.len / 4);
            } else {
                return -1;
            }
            break;
        default: // TL_FEATURE_INT64
            if (f.wire == WIRE_VARINT) {
                count++;
            } else if (f.wire == WIRE_LEN) {
                cursor packed = cursor_of(f.data, f.len);
                uint64_t ignored;
                while (packed.p < packed.end) {
                    if (!read_varint(&packed, &ignored)) return -1;
                    count++;
                }
            } else {
                return -1;
            }
            break;
        }
    }
    return r < 0 ? -1 : count;
}

/// Folds one Feature message into `e`: a list of the same kind adds values, another kind replaces.
static int scan_feature(entry *e, const uint8_t *p, size_t len) {
    cursor c = cursor_of(p, len);
    field f;
    int r;
    while ((r = next_field(&c, &f)) > 0) {
        if (f.number < 1 || f.number > 3) continue;
        if (f.wire != WIRE_LEN) return -1;
        long n = scan_list((int)f.number, f.data, f.len);
        if (n < 0) return -1;
        if ((int)f.number != e->kind) {
            e->kind = (int)f.number;
            e->count = 0;
            e->lists = 0;
        }
        e->count += (size_t)n;
        e->lists++;
        e->list = f.data;
        e->list_len = f.len;
    }
    return r;
}

static entry *append_entry(tl_example *ex) {
    if (ex->n == ex->cap) {
        size_t cap = ex->cap * 2;
        entry *grown = malloc(cap * sizeof *grown);
        if (grown == NULL) return NULL;
        memcpy(grown, ex->entries, ex->n * sizeof *grown);
        if (ex->entries != ex->inline_entries) free(ex->entries);
        ex->entries = grown;
        ex->cap = cap;
    }
    return &ex->entries[ex->n++];
}

/// 0 parsed, 2 malformed, 3 out of memory.
static int scan_features(tl_example *ex, const uint8_t *p, size_t len) {
    cursor c = cursor_of(p, len);
    field f;
    int r;
    while ((r = next_field(&c, &f)) > 0) {
        if (f.number != 1) continue;
        if (f.wire != WIRE_LEN) return 2;
        entry e = {.key = (const uint8_t *)"", .body = f.data, .body_len = f.len, .kind = TL_FEATURE_NONE};
        cursor ec = cursor_of(f.data, f.len);
        field g;
        int s;
        while ((s = next_field(&ec, &g)) > 0) {
            if (g.number != 1 && g.number != 2) continue;
            if (g.wire != WIRE_LEN) return 2;
            if (g.number == 1) {
                e.key = g.data;
                e.key_len = g.len;
            } else if (scan_feature(&e, g.data, g.len) < 0) {
                return 2;
            }
        }
        if (s < 0) return 2;
        entry *slot = append_entry(ex);
        if (slot == NULL) return 3;
        *slot = e;
    }
    return r < 0 ? 2 : 0;
}

int tl_example_parse(const uint8_t *data, size_t len, tl_example **out) {
    if (out == NULL) return 1;
    *out = NULL;
    if (data == NULL && len > 0) return 1;
    tl_example *ex = malloc(sizeof *ex);
    if (ex == NULL) return 3;
    ex->entries = ex->inline_entries;
    ex->n = 0;
    ex->cap = INLINE_ENTRIES;
    cursor c = cursor_of(data, len);
    field f;
    int r = 0, status = 0;
    while (status == 0 && (r = next_field(&c, &f)) > 0) {
        if (f.number != 1) continue;
        status = f.wire == WIRE_LEN ? scan_features(ex, f.data, f.len) : 2;
    }
    if (status == 0 && r < 0) status = 2;
    if (status != 0) {
        tl_example_free(ex);
        return status;
    }
    *out = ex;
    return 0;
}

void tl_example_free(tl_example *ex) {
    if (ex == NULL) return;
    if (ex->entries != ex->inline_entries) free(ex->entries);
    free(ex);
}

// ---------------------------------------------------------------- values

/// Where decoded values go: floats or int64s into `out` (up to `cap`), or bytes values
/// `first ..< first + cap` into `views`. `n` counts the values of the current list run.
typedef struct {
    int kind;
    void *out;
    size_t cap, first, n;
} sink;

static inline void sink_put(sink *s, const uint8_t *p, size_t len) {
    size_t i = s->n++;
    switch (s->kind) {
    case TL_FEATURE_FLOAT:
        if (i < s->cap) memcpy((float *)s->out + i, p, 4);
        break;
    case TL_FEATURE_INT64:
        if (i < s->cap) {
            cursor c = cursor_of(p, len);
            uint64_t v = 0;
            read_varint(&c, &v);
            ((int64_t *)s->out)[i] = (int64_t)v;
        }
        break;
    default:
        if (i >= s->first && i - s->first < s->cap) ((tl_bytes_view *)s->out)[i - s->first] = (tl_bytes_view){p, len};
        break;
    }
}

/// Feeds a (checked) list message's values to `s`.
static void sink_list(sink *s, const uint8_t *p, size_t len) {
    cursor c = cursor_of(p, len);
    field f;
    while (next_field(&c, &f) > 0) {
        if (f.number != 1) continue;
        if (s->kind == TL_FEATURE_FLOAT && f.wire == WIRE_LEN) {
            size_t k = f.len / 4;
            if (s->n < s->cap) {
                size_t room = s->cap - s->n;
                memcpy((float *)s->out + s->n, f.data, (k < room ? k : room) * 4);
            }
            s->n += k;
        } else if (s->kind == TL_FEATURE_INT64 && f.wire == WIRE_LEN) {
            cursor packed = cursor_of(f.data, f.len);
            while (packed.p < packed.end) {
                const uint8_t *at = packed.p;
                uint64_t v;
                read_varint(&packed, &v);
                sink_put(s, at, (size_t)(packed.p - at));
            }
        } else {
            sink_put(s, f.data, f.len);
        }
    }
}

/// Feeds entry `e`'s values (its final kind's lists, after the last change of kind) to `s`.
static void sink_entry(sink *s, const entry *e) {
    if (e->lists == 1) {
        sink_list(s, e->list, e->list_len);
        return;
    }
    cursor c = cursor_of(e->body, e->body_len);
    field f;
    while (next_field(&c, &f) > 0) {
        if (f.number != 2) continue;
        cursor fc = cursor_of(f.data, f.len);
        field g;
        while (next_field(&fc, &g) > 0) {
            if (g.number < 1 || g.number > 3) continue;
            if ((int)g.number != e->kind) {
                s->n = 0; // replaced by a later member of the oneof
                continue;
            }
            sink_list(s, g.data, g.len);
        }
    }
}

static const entry *entry_at(const tl_example *ex, size_t i) {
    return (ex != NULL && i < ex->n) ? &ex->entries[i] : NULL;
}

size_t tl_example_feature_count(const tl_example *ex) { return ex != NULL ? ex->n : 0; }

const uint8_t *tl_example_feature_key(const tl_example *ex, size_t i, size_t *len) {
    const entry *e = entry_at(ex, i);
    if (len != NULL) *len = e != NULL ? e->key_len : 0;
    return e != NULL ? e->key : NULL;
}

int tl_example_entry(const tl_example *ex, size_t i, size_t *count) {
    const entry *e = entry_at(ex, i);
    if (count != NULL) *count = e != NULL ? e->count : 0;
    return e != NULL ? e->kind : TL_FEATURE_NONE;
}

static long copy_numbers(const entry *e, int kind, void *out, size_t n) {
    if (e == NULL || e->kind != kind) return -1;
    sink s = {.kind = kind, .out = out, .cap = n};
    if (n > 0) sink_entry(&s, e);
    return (long)(e->count < n ? e->count : n);
}

long tl_example_entry_floats(const tl_example *ex, size_t i, float *out, size_t n) {
    return copy_numbers(entry_at(ex, i), TL_FEATURE_FLOAT, out, n);
}

long tl_example_entry_int64s(const tl_example *ex, size_t i, int64_t *out, size_t n) {
    return copy_numbers(entry_at(ex, i), TL_FEATURE_INT64, out, n);
}

long tl_example_entry_bytes(const tl_example *ex, size_t i, size_t first, tl_bytes_view *out, size_t n) {
    const entry *e = entry_at(ex, i);
    if (e == NULL || e->kind != TL_FEATURE_BYTES) return -1;
    if (first >= e->count || n == 0) return 0;
    sink s = {.kind = TL_FEATURE_BYTES, .out = out, .cap = n, .first = first};
    sink_entry(&s, e);
    size_t left = e->count - first;
    return (long)(left < n ? left : n);
}

/// The last entry named `key` wins, as in every protobuf runtime. Linear: Examples hold a handful of keys.
long tl_example_lookup(const tl_example *ex, const char *key) {
    if (ex == NULL || key == NULL) return -1;
    size_t len = strlen(key);
    for (size_t i = ex->n; i-- > 0;) {
        const entry *e = &ex->entries[i];
        if (e->key_len == len && memcmp(e->key, key, len) == 0) return (long)i;
    }
    return -1;
}

int tl_example_find(const tl_example *ex, const char *key, size_t *count) {
    long i = tl_example_lookup(ex, key);
    if (i < 0) {
        if (count != NULL) *count = 0;
        return TL_FEATURE_NONE;
    }
    return tl_example_entry(ex, (size_t)i, count);
}

long tl_example_copy_floats(const tl_example *ex, const char *key, float *out, size_t n) {
    long i = tl_example_lookup(ex, key);
    return i < 0 ? -1 : tl_example_entry_floats(ex, (size_t)i, out, n);
}

long tl_example_copy_int64s(const tl_example *ex, const char *key, int64_t *out, size_t n) {
    long i = tl_example_lookup(ex, key);
    return i < 0 ? -1 : tl_example_entry_int64s(ex, (size_t)i, out, n);
}

int tl_example_bytes(const tl_example *ex, const char *key, size_t index, const uint8_t **data, size_t *len) {
    long i = tl_example_lookup(ex, key);
    if (i < 0 || tl_example_entry(ex, (size_t)i, NULL) != TL_FEATURE_BYTES) return 1;
    tl_bytes_view view;
    if (tl_example_entry_bytes(ex, (size_t)i, index, &view, 1) != 1) return 2;
    if (data != NULL) *data = view.data;
    if (len != NULL) *len = view.len;
    return 0;
}
