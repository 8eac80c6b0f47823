// Optimizer updates, dropout masks and row gathers; part of kernels.cu (included at its end).

// ------------------------------------------------------------------------------------------
// Optimizers (in place, fused), PyTorch semantics, as tl_sgd_update / tl_adam_update /
// tl_rmsprop_update in kernels.c. w, g and the state buffers are [n].

// SGD with momentum / Nesterov / L2 weight decay. buf is unused (may be NULL) when momentum == 0.
__device__ __forceinline__ void tl_sgd_one(float &w, float g, float &b, float lr, float momentum,
                                           float dampening, float wd, int nesterov, int first) {
    float d = g + wd * w;
    if (momentum != 0.0f) {
        float nb = first ? d : momentum * b + (1.0f - dampening) * d;
        b = nb;
        d = nesterov ? d + momentum * nb : nb;
    }
    w -= lr * d;
}

extern "C" __global__ void tl_k_sgd(float *w, const float *g, float *buf, u64 n, float lr, float momentum,
                                    float dampening, float wd, int nesterov, int first, int vec) {
    u64 start = 0;
    bool hasbuf = momentum != 0.0f;
    if (vec) {
        u64 n4 = n >> 2;
        for (u64 i = tl_tid(); i < n4; i += tl_nthreads()) {
            float4 wv = ((float4 *)w)[i], gv = ((const float4 *)g)[i];
            float4 bv = hasbuf ? ((float4 *)buf)[i] : make_float4(0.f, 0.f, 0.f, 0.f);
            tl_sgd_one(wv.x, gv.x, bv.x, lr, momentum, dampening, wd, nesterov, first);
            tl_sgd_one(wv.y, gv.y, bv.y, lr, momentum, dampening, wd, nesterov, first);
            tl_sgd_one(wv.z, gv.z, bv.z, lr, momentum, dampening, wd, nesterov, first);
            tl_sgd_one(wv.w, gv.w, bv.w, lr, momentum, dampening, wd, nesterov, first);
            ((float4 *)w)[i] = wv;
            if (hasbuf) ((float4 *)buf)[i] = bv;
        }
        start = n4 << 2;
    }
    for (u64 i = start + tl_tid(); i < n; i += tl_nthreads()) {
        float wi = w[i], bi = hasbuf ? buf[i] : 0.0f;
        tl_sgd_one(wi, g[i], bi, lr, momentum, dampening, wd, nesterov, first);
        w[i] = wi;
        if (hasbuf) buf[i] = bi;
    }
}

// Adam / AdamW (decoupled weight decay when adamw != 0). bc1 = 1 - beta1^t, bc2 = 1 - beta2^t.
// The host passes step = lr / bc1, inv_sqrt_bc2 = 1 / sqrt(bc2), decay = 1 - lr*wd (AdamW) or 1,
// l2 = wd (Adam) or 0, computed as tl_adam_update computes them.
__device__ __forceinline__ void tl_adam_one(float &w, float g, float &m, float &v, float beta1, float beta2,
                                            float eps, float step, float inv_sqrt_bc2, float decay, float l2) {
    float gi = g + l2 * w;
    float mi = beta1 * m + (1.0f - beta1) * gi;
    float vi = beta2 * v + (1.0f - beta2) * gi * gi;
    m = mi;
    v = vi;
    w = w * decay - step * mi / (sqrtf(vi) * inv_sqrt_bc2 + eps);
}

extern "C" __global__ void tl_k_adam(float *w, const float *g, float *m, float *v, u64 n, float beta1,
                                     float beta2, float eps, float step, float inv_sqrt_bc2, float decay,
                                     float l2, int vec) {
    u64 start = 0;
    if (vec) {
        u64 n4 = n >> 2;
        for (u64 i = tl_tid(); i < n4; i += tl_nthreads()) {
            float4 wv = ((float4 *)w)[i], gv = ((const float4 *)g)[i];
            float4 mv = ((float4 *)m)[i], vv = ((float4 *)v)[i];
            tl_adam_one(wv.x, gv.x, mv.x, vv.x, beta1, beta2, eps, step, inv_sqrt_bc2, decay, l2);
            tl_adam_one(wv.y, gv.y, mv.y, vv.y, beta1, beta2, eps, step, inv_sqrt_bc2, decay, l2);
            tl_adam_one(wv.z, gv.z, mv.z, vv.z, beta1, beta2, eps, step, inv_sqrt_bc2, decay, l2);
            tl_adam_one(wv.w, gv.w, mv.w, vv.w, beta1, beta2, eps, step, inv_sqrt_bc2, decay, l2);
            ((float4 *)w)[i] = wv;
            ((float4 *)m)[i] = mv;
            ((float4 *)v)[i] = vv;
        }
        start = n4 << 2;
    }
    for (u64 i = start + tl_tid(); i < n; i += tl_nthreads()) {
        float wi = w[i], mi = m[i], vi = v[i];
        tl_adam_one(wi, g[i], mi, vi, beta1, beta2, eps, step, inv_sqrt_bc2, decay, l2);
        w[i] = wi;
        m[i] = mi;
        v[i] = vi;
    }
}

// RMSProp (optional momentum, centered). mom may be NULL when momentum == 0, gavg when !centered.
extern "C" __global__ void tl_k_rmsprop(float *w, const float *g, float *sq, float *mom, float *gavg, u64 n,
                                        float lr, float alpha, float eps, float wd, float momentum,
                                        int centered) {
    for (u64 i = tl_tid(); i < n; i += tl_nthreads()) {
        float gi = g[i] + wd * w[i];
        float s = alpha * sq[i] + (1.0f - alpha) * gi * gi;
        sq[i] = s;
        float denom;
        if (centered) {
            float a = alpha * gavg[i] + (1.0f - alpha) * gi;
            gavg[i] = a;
            denom = sqrtf(s - a * a) + eps;
        } else {
            denom = sqrtf(s) + eps;
        }
        if (momentum > 0.0f) {
            float b = momentum * mom[i] + gi / denom;
            mom[i] = b;
            w[i] -= lr * b;
        } else {
            w[i] -= lr * gi / denom;
        }
    }
}

// ------------------------------------------------------------------------------------------
// Dropout mask. out[n]: scale where u >= rate, else 0, with u = hashed_uniform(key, step, i),
// the counter-based draw of Random.swift (`hashedUniform`): SplitMix64 of
// key ^ step*K1 ^ i*K2, top 24 bits. Integer arithmetic and exact float conversions, so the
// mask is bit-identical to the CPU's for the same (key, step).
extern "C" __global__ void tl_k_dropout_mask(float *out, u64 n, u64 key, u64 step, float rate, float scale) {
    for (u64 i = tl_tid(); i < n; i += tl_nthreads()) {
        u64 x = key ^ (step * 0xD6E8FEB86659FD93ULL) ^ (i * 0xA0761D6478BD642FULL);
        x += 0x9E3779B97F4A7C15ULL;
        u64 z = x;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        z ^= z >> 31;
        float u = (float)(z >> 40) * (1.0f / 16777216.0f);
        out[i] = u >= rate ? scale : 0.0f;
    }
}

// ------------------------------------------------------------------------------------------
// Row gather. x[rows, row], idx[count] (int32, already range-checked by the host):
// out[i, :] = x[idx[i], :]. One grid-stride loop over count * row elements.
extern "C" __global__ void tl_k_gather_rows(const float *x, const int *idx, u64 count, u64 row, float *out) {
    u64 n = count * row;
    for (u64 e = tl_tid(); e < n; e += tl_nthreads()) {
        u64 i = e / row, c = e - i * row;
        out[e] = x[(u64)idx[i] * row + c];
    }
}

// Row scatter-add, the gather's gradient: out[idx[i], :] += g[i, :] over a zeroed out.
// Repeated indices meet in atomicAdd, so their sum's rounding order is not fixed.
extern "C" __global__ void tl_k_scatter_add_rows(const float *g, const int *idx, u64 count, u64 row, float *out) {
    u64 n = count * row;
    for (u64 e = tl_tid(); e < n; e += tl_nthreads()) {
        u64 i = e / row, c = e - i * row;
        atomicAdd(&out[(u64)idx[i] * row + c], g[e]);
    }
}
