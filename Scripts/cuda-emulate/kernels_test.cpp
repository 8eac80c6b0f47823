// CPU emulation test of the CUDA kernels: see Scripts/cuda-emulate/run.
#include "emu.h"
#include <cstdio>
#include <random>
extern "C" {
#include "clearner.h"
}
#include "kernels.cu" // Sources/CLearner/cuda, on the include path

static std::mt19937 rng(1);
static std::vector<float> rnd(size_t n) { std::normal_distribution<float> d; std::vector<float> v(n); for (auto &x : v) x = d(rng); return v; }
static int fails = 0;
static void cmp(const char *what, const std::vector<float> &a, const std::vector<float> &b, double tol) {
    double num = 0, den = 0, worst = 0;
    for (size_t i = 0; i < a.size(); i++) {
        double d = (double)a[i] - b[i];
        if (std::isnan(a[i]) != std::isnan(b[i])) d = 1e9;
        if (std::isnan(a[i]) && std::isnan(b[i])) d = 0;
        num += d * d; if (!std::isnan(b[i])) den += (double)b[i] * b[i]; worst = std::max(worst, std::fabs(d));
    }
    double rel = std::sqrt(num / std::max(den, 1e-30));
    bool ok = a.size() == b.size() && rel <= tol;
    if (!ok) fails++;
    printf("%s %-50s rel %.2e maxabs %.2e\n", ok ? "PASS" : "FAIL", what, rel, worst);
}
static tl_window2d win(int C, int H, int W, int kh, int kw, int sh, int sw, int pt, int pb, int pl, int pr, int dh, int dw) {
    tl_window2d w{C, H, W, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw, 0, 0};
    w.out_h = (H + pt + pb - (dh * (kh - 1) + 1)) / sh + 1;
    w.out_w = (W + pl + pr - (dw * (kw - 1) + 1)) / sw + 1;
    return w;
}
static tl_win kw_(const tl_window2d &w) { tl_win k; static_assert(sizeof k == sizeof w); memcpy(&k, &w, sizeof k); return k; }

int main() {
    std::vector<tl_window2d> wins = {
        win(3, 7, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1), win(3, 9, 9, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2),
        win(2, 8, 7, 3, 2, 2, 3, 0, 1, 1, 0, 1, 2), win(4, 5, 5, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1),
        win(2, 6, 6, 2, 2, 2, 2, 0, 0, 0, 0, 1, 1), win(2, 9, 9, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1),
        win(1, 4, 5, 5, 4, 3, 2, 2, 3, 1, 2, 1, 1), win(2, 10, 3, 4, 1, 1, 1, 3, 0, 0, 0, 3, 1),
    };
    int wi = 0;
    for (auto w : wins) {
        char name[128];
        const size_t images = 3, C = w.channels, plane = (size_t)w.out_h * w.out_w, inPlane = (size_t)w.height * w.width;
        const size_t colImage = C * w.kernel_h * w.kernel_w * plane, inImage = C * inPlane;
        auto x = rnd(images * inImage);
        // im2col
        std::vector<float> cpu(images * colImage), gpu(images * colImage, NAN);
        for (size_t i = 0; i < images; i++) tl_im2col(x.data() + i * inImage, &w, cpu.data() + i * colImage);
        tl_win k = kw_(w);
        launch(3, 32, [&] { tl_k_im2col(x.data(), k, images, gpu.data()); });
        snprintf(name, sizeof name, "im2col window %d", wi); cmp(name, gpu, cpu, 0);
        // col2im
        auto col = rnd(images * colImage);
        std::vector<float> cx(images * inImage, 0.0f), gx(images * inImage, NAN);
        for (size_t i = 0; i < images; i++) tl_col2im(col.data() + i * colImage, &w, cx.data() + i * inImage);
        launch(2, 32, [&] { tl_k_col2im(col.data(), k, images, gx.data()); });
        snprintf(name, sizeof name, "col2im window %d", wi); cmp(name, gx, cx, 1e-6);
        // pools: planes = images * C
        const size_t planes = images * C;
        if (w.pad_top * 2 <= w.kernel_h && w.pad_left * 2 <= w.kernel_w || true) {
            std::vector<float> co(planes * plane), ca(planes * plane), go(planes * plane, NAN), ga(planes * plane, NAN);
            auto xm = x;
            xm[5] = NAN; // a NaN wins its windows
            std::vector<int32_t> taps(tl_im2col_table_size(&w, 1));
            tl_im2col_table(&w, 1, taps.data());
            tl_maxpool2d_forward(xm.data(), &w, taps.data(), planes, co.data(), ca.data());
            launch(3, 32, [&] { tl_k_maxpool_fwd(xm.data(), k, planes, go.data(), ga.data()); });
            snprintf(name, sizeof name, "maxpool fwd window %d", wi); cmp(name, go, co, 0);
            snprintf(name, sizeof name, "maxpool argmax window %d", wi); cmp(name, ga, ca, 0);
            auto g = rnd(planes * plane);
            std::vector<float> cdx(planes * inPlane), gdx(planes * inPlane, NAN);
            tl_maxpool2d_backward(g.data(), ca.data(), &w, planes, cdx.data());
            launch(3, 32, [&] { tl_k_maxpool_bwd(g.data(), ga.data(), k, planes, gdx.data()); });
            snprintf(name, sizeof name, "maxpool bwd window %d", wi); cmp(name, gdx, cdx, 0);
            for (int inc = 0; inc < 2; inc++) {
                std::vector<float> ca2(planes * plane), ga2(planes * plane, NAN);
                tl_avgpool2d_forward(x.data(), &w, planes, inc, ca2.data());
                launch(3, 32, [&] { tl_k_avgpool_fwd(x.data(), k, planes, inc, ga2.data()); });
                snprintf(name, sizeof name, "avgpool fwd window %d include_pad %d", wi, inc); cmp(name, ga2, ca2, 0);
                std::vector<float> cdx2(planes * inPlane), gdx2(planes * inPlane, NAN);
                tl_avgpool2d_backward(g.data(), &w, planes, inc, cdx2.data());
                launch(3, 32, [&] { tl_k_avgpool_bwd(g.data(), k, planes, inc, gdx2.data()); });
                snprintf(name, sizeof name, "avgpool bwd window %d include_pad %d", wi, inc); cmp(name, gdx2, cdx2, 1e-6);
            }
        }
        wi++;
    }
    // channel bias
    {
        auto o = rnd(2 * 5 * 7); auto b = rnd(5); auto c = o;
        for (size_t e = 0; e < c.size(); e++) c[e] += b[(e / 7) % 5];
        launch(2, 32, [&] { tl_k_channel_bias(o.data(), b.data(), o.size(), 5, 7); });
        cmp("channel bias", o, c, 0);
    }
    // batch norm
    for (auto [n, c, s] : std::vector<std::tuple<size_t, size_t, size_t>>{{2, 3, 81}, {5, 4, 1}, {3, 7, 13}}) {
        auto x = rnd(n * c * s);
        for (auto &v : x) v = v * 2 + 3;
        std::vector<float> cm(c), cv(c), gm(c, NAN), gv(c, NAN);
        tl_batchnorm_stats(x.data(), n, c, s, 0, c, cm.data(), cv.data());
        for (size_t chunks : {(size_t)1, (size_t)3}) {
            unsigned blocks = (unsigned)(c * chunks);
            std::vector<double> part(c * chunks * 2);
            for (unsigned bx : {32u, 64u, 256u}) {
                launch(blocks, bx, [&] { tl_k_bn_stats(x.data(), n, c, s, chunks, part.data()); });
                launch(1, 32, [&] { tl_k_bn_stats_finish(part.data(), c, chunks, n * s, gm.data(), gv.data()); });
                cmp("bn mean", gm, cm, 1e-6);
                cmp("bn var", gv, cv, 1e-6);
            }
            auto wt = rnd(c), bs = rnd(c);
            std::vector<float> cy(x.size()), gy(x.size(), NAN);
            tl_batchnorm_forward(x.data(), n, c, s, 0, c, cm.data(), cv.data(), 1e-5f, wt.data(), bs.data(), cy.data());
            launch(blocks, 32, [&] { tl_k_bn_forward(x.data(), n, c, s, chunks, cm.data(), cv.data(), 1e-5f, wt.data(), bs.data(), gy.data()); });
            cmp("bn forward", gy, cy, 1e-6);
            auto g = rnd(x.size());
            for (int bst = 0; bst < 2; bst++) {
                std::vector<float> cdx(x.size()), cdw(c), cdb(c), gdx(x.size(), NAN), gdw(c, NAN), gdb(c, NAN), totals(2 * c);
                tl_batchnorm_backward(g.data(), x.data(), n, c, s, 0, c, cm.data(), cv.data(), 1e-5f, wt.data(), bst, cdx.data(), cdw.data(), cdb.data());
                launch(blocks, 64, [&] { tl_k_bn_backward(g.data(), x.data(), n, c, s, chunks, cm.data(), part.data()); });
                launch(1, 32, [&] { tl_k_bn_backward_finish(part.data(), c, chunks, cv.data(), 1e-5f, gdw.data(), gdb.data(), totals.data()); });
                launch(blocks, 64, [&] { tl_k_bn_backward_dx(g.data(), x.data(), n, c, s, chunks, cm.data(), cv.data(), 1e-5f, wt.data(), bst, totals.data(), gdx.data()); });
                cmp(bst ? "bn backward dx (batch stats)" : "bn backward dx (eval)", gdx, cdx, 1e-5);
                cmp("bn backward dw", gdw, cdw, 1e-5);
                cmp("bn backward db", gdb, cdb, 1e-5);
            }
        }
    }
    // max mid
    for (auto [o, m, i] : std::vector<std::tuple<size_t, size_t, size_t>>{{3, 5, 4}, {1, 7, 1}, {4, 1, 3}, {2, 6, 1}}) {
        auto x = rnd(o * m * i);
        x[2] = x[2 + i] = 5.0f; // a tie
        std::vector<float> co(o * i), go(o * i, NAN);
        std::vector<int32_t> ci(o * i), gi(o * i, -7);
        tl_reduce_mid(1, x.data(), o, m, i, co.data(), ci.data());
        launch(2, 32, [&] { tl_k_max_mid(x.data(), go.data(), gi.data(), o, m, i); });
        cmp("max mid values", go, co, 0);
        std::vector<float> fi(ci.begin(), ci.end()), fg(gi.begin(), gi.end());
        cmp("max mid argmax", fg, fi, 0);
    }
    // permute
    {
        std::vector<int64_t> shape = {2, 3, 4, 5};
        std::vector<std::vector<int>> perms = {{3, 0, 2, 1}, {0, 1, 3, 2}, {1, 0, 2, 3}, {0, 1, 2, 3}};
        auto x = rnd(120);
        int64_t strides[4] = {60, 20, 5, 1};
        for (auto &p : perms) {
            int64_t os[4], ps[4];
            tl_perm pp{};
            for (int d = 0; d < 4; d++) { os[d] = shape[p[d]]; ps[d] = strides[p[d]]; pp.shape[d] = os[d]; pp.stride[d] = ps[d]; }
            std::vector<float> c(120), g(120, NAN);
            tl_permute(4, os, x.data(), ps, c.data());
            launch(2, 32, [&] { tl_k_permute(x.data(), g.data(), 120, 4, pp); });
            cmp("permute", g, c, 0);
        }
        std::vector<float> c(1), g(1, NAN);
        tl_perm pp{};
        launch(1, 32, [&] { tl_k_permute(x.data(), g.data(), 1, 0, pp); });
        c[0] = x[0];
        cmp("permute rank 0", g, c, 0);
    }

    // softmax cross-entropy with label smoothing (reference: CPUBackend+Fused.swift's loops)
    for (float eps : {0.0f, 0.1f, 0.3f}) {
        size_t rows = 7, cols = 37;
        auto x = rnd(rows * cols);
        std::vector<float> lab(rows), gl = rnd(rows);
        for (size_t r = 0; r < rows; r++) lab[r] = (float)((r * 5) % cols);
        std::vector<float> refl(rows), refg(rows * cols);
        for (size_t r = 0; r < rows; r++) {
            const float *row = x.data() + r * cols;
            float m = -INFINITY; for (size_t c = 0; c < cols; c++) m = std::max(m, row[c]);
            double s = 0; for (size_t c = 0; c < cols; c++) s += exp((double)row[c] - m);
            double lse = log(s) + m;
            int y = (int)lab[r];
            double l = -(row[y] - lse) * (1 - eps), sl = 0;
            for (size_t c = 0; c < cols; c++) sl += row[c] - lse;
            l -= eps * sl / cols;
            refl[r] = (float)l;
            for (size_t c = 0; c < cols; c++) {
                float p = (float)(exp(row[c] - lse));
                refg[r * cols + c] = (p - eps / cols) * gl[r] * 0.5f - ((int)c == y ? (1 - eps) * gl[r] * 0.5f : 0);
            }
        }
        std::vector<float> gpl(rows, NAN), gpg(rows * cols, NAN);
        for (unsigned bx : {32u, 64u}) {
            launch(3, bx, [&] { tl_k_xent_forward(x.data(), lab.data(), gpl.data(), rows, cols, eps, nullptr); });
            cmp("xent forward smoothing", gpl, refl, 1e-5);
            launch(3, bx, [&] { tl_k_xent_backward(x.data(), lab.data(), gl.data(), 0.5f, gpg.data(), rows, cols, eps, nullptr); });
            cmp("xent backward smoothing", gpg, refg, 1e-5);
        }
        // Bad labels (out of range, negative, fractional) are reported: the first row, its label.
        std::vector<float> bad = lab;
        bad[rows - 1] = (float)cols;
        bad[3] = -1.0f;
        bad[5] = 0.5f;
        for (int backward = 0; backward < 2; backward++) {
            unsigned long long fault[2] = {~0ull, 0};
            if (backward)
                launch(3, 64, [&] { tl_k_xent_backward(x.data(), bad.data(), gl.data(), 0.5f, gpg.data(), rows, cols, eps, fault); });
            else
                launch(3, 64, [&] { tl_k_xent_forward(x.data(), bad.data(), gpl.data(), rows, cols, eps, fault); });
            float label;
            unsigned bits = (unsigned)(fault[0] & 0xffffffffu);
            memcpy(&label, &bits, 4);
            bool ok = (fault[0] >> 32) == 3 && label == -1.0f && fault[1] == cols;
            std::printf("%s xent %s reports bad labels (row %llu, label %g)\n", ok ? "PASS" : "FAIL",
                        backward ? "backward" : "forward", fault[0] >> 32, label);
            if (!ok) fails++;
        }
    }
    // sigmoid cross-entropy
    {
        size_t n = 60, per = 6;
        auto x = rnd(n), t = rnd(n), w = rnd(n / per);
        for (auto &v : x) v *= 5;
        std::vector<float> rf(n), rb(n), gf(n, NAN), gb(n, NAN);
        for (size_t i = 0; i < n; i++) {
            rf[i] = (std::max(x[i], 0.0f) - x[i] * t[i] + (float)log1p(exp(-fabs(x[i])))) * w[i / per];
            float s = 1 / (1 + expf(-x[i]));
            rb[i] = (s - t[i]) * 0.25f * w[i / per];
        }
        launch(2, 32, [&] { tl_k_sigmoid_xent(x.data(), t.data(), w.data(), per, gf.data(), n, 0, 1.0f); });
        cmp("sigmoid xent forward", gf, rf, 1e-6);
        launch(2, 32, [&] { tl_k_sigmoid_xent(x.data(), t.data(), w.data(), per, gb.data(), n, 1, 0.25f); });
        cmp("sigmoid xent backward", gb, rb, 1e-6);
    }
    // strided broadcast binary
    {
        int64_t shape[5] = {2, 5, 3, 4, 4};
        int64_t as[5] = {12, 0, 4, 0, 1}, bs[5] = {0, 3, 1, 0, 0};
        auto a = rnd(24), b = rnd(15);
        size_t n = 2 * 5 * 3 * 4 * 4;
        for (int op = 0; op < TL_BINARY_COUNT; op++) {
            std::vector<float> c(n), g(n, NAN);
            tl_binary_strided(op, 5, shape, a.data(), as, b.data(), bs, c.data());
            tl_bcast p{};
            for (int d = 0; d < 5; d++) { p.shape[d] = shape[d]; p.astride[d] = as[d]; p.bstride[d] = bs[d]; }
            launch(2, 32, [&] { tl_k_binary_strided(op, a.data(), b.data(), g.data(), n, 5, p); });
            cmp("binary strided", g, c, 1e-7);
        }
    }
    // every unary op of the table, forward and backward, on inputs of its domain (vec and scalar paths)
    for (int op = 0; op < TL_UNARY_COUNT; op++) {
        size_t n = 103;
        auto x = rnd(n), g = rnd(n);
        for (auto &v : x) v = tl_unary_domain(op) == TL_DOMAIN_POSITIVE ? 0.1f + std::fabs(v) : 3 * v;
        std::vector<float> y(n), gy(n, NAN), dx(n), gdx(n, NAN);
        tl_unary(op, x.data(), y.data(), n);
        tl_unary_backward(op, x.data(), y.data(), g.data(), dx.data(), n);
        char what[64];
        for (int vec = 0; vec < 2; vec++) {
            launch(2, 32, [&] { tl_k_unary(op, x.data(), gy.data(), n, vec); });
            snprintf(what, sizeof what, "unary %s%s", tl_unary_name(op), vec ? " (float4)" : "");
            cmp(what, gy, y, 0);
        }
        launch(2, 32, [&] { tl_k_unary_backward(op, x.data(), y.data(), g.data(), gdx.data(), n); });
        snprintf(what, sizeof what, "unary backward %s", tl_unary_name(op));
        cmp(what, gdx, dx, 0);
    }
    printf("%d failures\n", fails);
    return fails != 0;
}
