// CPU emulation of the CUDA built-ins the kernels use: one block at a time, its threads as
// std::threads with a barrier; warp shuffles through a shared slot array.
#include <barrier>
#include <cmath>
#include <cstring>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>
struct dim3e { unsigned x = 0, y = 0, z = 0; };
thread_local dim3e threadIdx, blockIdx;
dim3e blockDim, gridDim;
std::barrier<> *bar;
#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
struct float4 { float x, y, z, w; };
inline float4 make_float4(float a, float b, float c, float d) { return {a, b, c, d}; }
inline float __int_as_float(int i) { float f; memcpy(&f, &i, 4); return f; }
inline void __syncthreads() { bar->arrive_and_wait(); }
template <class T> T __shfl_xor_sync(unsigned, T v, int o) {
    static T slots[1024];
    slots[threadIdx.x] = v;
    bar->arrive_and_wait();
    T r = slots[threadIdx.x ^ o];
    bar->arrive_and_wait();
    return r;
}
std::mutex atom;
inline float atomicAdd(float *p, float v) { std::lock_guard<std::mutex> l(atom); float o = *p; *p += v; return o; }
inline unsigned long long atomicMin(unsigned long long *p, unsigned long long v) {
    std::lock_guard<std::mutex> l(atom);
    unsigned long long o = *p;
    if (v < o) *p = v;
    return o;
}
inline unsigned __float_as_uint(float f) { unsigned u; memcpy(&u, &f, 4); return u; }
#include <math.h>
inline void launch(unsigned gx, unsigned bx, std::function<void()> k) {
    gridDim = {gx, 1, 1};
    blockDim = {bx, 1, 1};
    for (unsigned b = 0; b < gx; b++) {
        std::barrier<> br(bx);
        bar = &br;
        std::vector<std::thread> ts;
        for (unsigned t = 0; t < bx; t++)
            ts.emplace_back([=] { threadIdx = {t, 0, 0}; blockIdx = {b, 0, 0}; k(); });
        for (auto &t : ts) t.join();
    }
}
