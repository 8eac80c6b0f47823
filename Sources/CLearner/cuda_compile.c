// NVRTC compilation of the embedded kernel source (cuda/kernels.cu with the headers it includes
// inlined by Scripts/embed-kernels) and the compile check that CI runs without a GPU. The disk
// cache is cuda_kernel_cache.c, loading the result cuda_launch.c.
#define _GNU_SOURCE
#include "cuda_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// The kernel source, generated from cuda/kernels.cu by Scripts/embed-kernels.
#include "cuda_kernels.inc"

const char *tl_cuda_kernel_source(void) { return tl_cuda_kernels_source; }


// ------------------------------------------------------------------ NVRTC compilation
int tl_nvrtc_options(const char *arch, char *archopt, const char **opts) {
    snprintf(archopt, 64, "--gpu-architecture=%s", arch);
    opts[0] = archopt;
    opts[1] = "--fmad=true"; // NVRTC's default, stated: contractions stay within the CPU tolerance
    return 2;
}

int tl_nvrtc_compile(const char *arch, tl_compiled *out, char *log, size_t loglen) {
    memset(out, 0, sizeof *out);
    tl_cuda_copy_message(log, loglen, "");
    int s = tl_cuda_ensure_nvrtc();
    if (s) return s;
    char archopt[64];
    const char *opts[4];
    int nopts = tl_nvrtc_options(arch, archopt, opts);
    nvrtcProgram prog;
    if ((s = TL_NVRTC(tl_nvrtc.nvrtcCreateProgram(&prog, tl_cuda_kernels_source, "tefla_kernels.cu", 0, NULL, NULL))))
        return s;
    nvrtcResult cr = tl_nvrtc.nvrtcCompileProgram(prog, nopts, opts);
    size_t lsize = 0;
    char *plog = NULL;
    if (tl_nvrtc.nvrtcGetProgramLogSize(prog, &lsize) == NVRTC_SUCCESS && lsize > 1 && (plog = malloc(lsize))) {
        if (tl_nvrtc.nvrtcGetProgramLog(prog, plog) != NVRTC_SUCCESS) plog[0] = '\0';
        tl_cuda_copy_message(log, loglen, plog);
    }
    if (cr != NVRTC_SUCCESS) {
        s = tl_cuda_fail(TL_CUDA_ERR_NVRTC, "NVRTC %d.%d could not compile the kernels for %s: %s\n%s",
                         tl_nvrtc_major, tl_nvrtc_minor, arch,
                         tl_nvrtc.nvrtcGetErrorString(cr), plog ? plog : "");
        goto done;
    }
    int want_cubin = strncmp(arch, "sm_", 3) == 0 && tl_nvrtc.nvrtcGetCUBINSize && tl_nvrtc.nvrtcGetCUBIN;
    size_t size = 0;
    if (want_cubin) {
        if ((s = TL_NVRTC(tl_nvrtc.nvrtcGetCUBINSize(prog, &size)))) goto done;
    } else {
        if ((s = TL_NVRTC(tl_nvrtc.nvrtcGetPTXSize(prog, &size)))) goto done;
    }
    out->image = malloc(size ? size : 1);
    if (!out->image) {
        s = tl_cuda_fail(TL_CUDA_ERR_OUT_OF_MEMORY, "host out of memory for the compiled kernels");
        goto done;
    }
    s = want_cubin ? TL_NVRTC(tl_nvrtc.nvrtcGetCUBIN(prog, out->image)) : TL_NVRTC(tl_nvrtc.nvrtcGetPTX(prog, out->image));
    if (s) {
        free(out->image);
        out->image = NULL;
        goto done;
    }
    out->size = size;
    out->is_cubin = want_cubin;
    tl_cuda_copy_message(out->arch, sizeof out->arch, arch);
done:
    free(plog);
    tl_nvrtc.nvrtcDestroyProgram(&prog);
    return s;
}

// The NVRTC target for a device of compute capability cc (e.g. 90): "sm_90" when NVRTC knows
// that arch (a cubin, loaded as is), else "compute_XY" PTX for the newest arch it knows below
// cc, which the driver JIT-compiles for the device.
int tl_nvrtc_choose_arch(int cc, char *arch, size_t len) {
    if (tl_nvrtc.nvrtcGetNumSupportedArchs && tl_nvrtc.nvrtcGetSupportedArchs) {
        int n = 0;
        if (tl_nvrtc.nvrtcGetNumSupportedArchs(&n) == NVRTC_SUCCESS && n > 0 && n < 256) {
            int archs[256], best = 0;
            if (tl_nvrtc.nvrtcGetSupportedArchs(archs) == NVRTC_SUCCESS) {
                for (int i = 0; i < n; i++) {
                    if (archs[i] == cc) {
                        snprintf(arch, len, "sm_%d", cc);
                        return TL_CUDA_OK;
                    }
                    if (archs[i] < cc && archs[i] > best) best = archs[i];
                }
                if (best == 0)
                    return tl_cuda_fail(TL_CUDA_ERR_NVRTC,
                                        "NVRTC %d.%d supports no architecture at or below sm_%d (this GPU)",
                                        tl_nvrtc_major, tl_nvrtc_minor, cc);
                snprintf(arch, len, "compute_%d", best);
                return TL_CUDA_OK;
            }
        }
    }
    snprintf(arch, len, "sm_%d", cc); // old NVRTC without the query: try the device's own arch
    return TL_CUDA_OK;
}

// Finds ".entry NAME(" in PTX, or "NAME\0" in a cubin's string table.
static int image_has_kernel(const tl_compiled *c, const char *name) {
    char pat[128];
    size_t n;
    if (c->is_cubin) {
        n = strlen(name) + 1; // includes the NUL
        memcpy(pat, name, n);
    } else {
        n = (size_t)snprintf(pat, sizeof pat, ".entry %s(", name);
    }
    return memmem(c->image, c->size, pat, n) != NULL;
}

int tl_cuda_compile_check(const char *arch, char *log, size_t loglen) {
    tl_cuda_copy_message(log, loglen, "");
    if (!arch || !*arch) return tl_cuda_fail(TL_CUDA_ERR_INVALID, "tl_cuda_compile_check: no arch given");
    char a[32];
    if (arch[0] >= '0' && arch[0] <= '9') snprintf(a, sizeof a, "sm_%s", arch);
    else snprintf(a, sizeof a, "%s", arch);
    char nvlog[8192] = "";
    tl_compiled c;
    double t0 = tl_now_ms();
    int s = tl_nvrtc_compile(a, &c, nvlog, sizeof nvlog);
    double ms = tl_now_ms() - t0;
    if (s) {
        tl_cuda_last_error(log, loglen);
        return s;
    }
    char missing[512] = "";
    for (int k = 0; k < TLK_COUNT; k++) {
        if (!image_has_kernel(&c, tl_cuda_kernel_names[k])) {
            size_t u = strlen(missing);
            snprintf(missing + u, sizeof missing - u, "%s%s", u ? ", " : "", tl_cuda_kernel_names[k]);
        }
    }
    free(c.image);
    if (missing[0]) {
        s = tl_cuda_fail(TL_CUDA_ERR_NVRTC, "compiled for %s, but these kernels are missing from the result: %s", a,
                         missing);
        tl_cuda_last_error(log, loglen);
        return s;
    }
    if (log && loglen) {
        snprintf(log, loglen, "NVRTC %d.%d (%s): %d kernels compiled for %s into %zu bytes of %s in %.0f ms%s%s",
                 tl_nvrtc_major, tl_nvrtc_minor, tl_cuda_library(1), (int)TLK_COUNT, a, c.size,
                 c.is_cubin ? "cubin" : "PTX", ms, nvlog[0] ? "\nNVRTC log:\n" : "", nvlog);
    }
    return TL_CUDA_OK;
}


