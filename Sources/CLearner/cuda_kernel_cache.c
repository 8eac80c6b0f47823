// The on-disk cache of compiled kernels: one file per (source, NVRTC options, arch, NVRTC
// version), in a directory only this user can write (its files are loaded as GPU code).
#define _GNU_SOURCE
#include "cuda_internal.h"


#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// FNV-1a, 64-bit.
static uint64_t fnv1a(uint64_t h, const void *data, size_t len) {
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

// Creates every missing directory of `path` with mode 0700.
static int make_dirs(const char *path) {
    char buf[1024];
    if (strlen(path) >= sizeof buf) return -1;
    strcpy(buf, path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(buf, 0700) != 0 && errno != EEXIST) return -1;
    return 0;
}

// The cache directory: TEFLA_KERNEL_CACHE, else $XDG_CACHE_HOME/tefla/kernels, else
// ~/.cache/tefla/kernels. Returns 0 with the path in buf, 1 when the cache is off.
static int cache_dir(char *buf, size_t len) {
    const char *env = getenv("TEFLA_KERNEL_CACHE");
    if (env && *env) {
        if (!strcmp(env, "off") || !strcmp(env, "0") || !strcmp(env, "none")) return 1;
        snprintf(buf, len, "%s", env);
        return 0;
    }
    const char *xdg = getenv("XDG_CACHE_HOME");
    if (xdg && xdg[0] == '/') {
        snprintf(buf, len, "%s/tefla/kernels", xdg);
        return 0;
    }
    const char *home = getenv("HOME");
    if (!home || home[0] != '/') {
        struct passwd *pw = getpwuid(getuid());
        home = pw ? pw->pw_dir : NULL;
    }
    if (!home || home[0] != '/') return 1;
    snprintf(buf, len, "%s/.cache/tefla/kernels", home);
    return 0;
}

// Makes the directory and checks it is ours and not writable by others (its files are loaded
// as GPU code). Returns 0 when usable.
static int cache_dir_ready(const char *dir) {
    if (make_dirs(dir) != 0) return -1;
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) return -1;
    if (st.st_uid != geteuid() || (st.st_mode & 022)) return -1;
    return 0;
}

char *tl_kernel_cache_read(const char *path, size_t *size) {
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return NULL;
    struct stat st;
    char *buf = NULL;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 && st.st_size < (64 << 20) &&
        st.st_uid == geteuid() && (buf = malloc((size_t)st.st_size + 1))) {
        size_t got = 0;
        while (got < (size_t)st.st_size) {
            ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
            if (r <= 0) break;
            got += (size_t)r;
        }
        if (got == (size_t)st.st_size) {
            buf[got] = '\0'; // PTX is loaded as a C string
            *size = got;
        } else {
            free(buf);
            buf = NULL;
        }
    }
    close(fd);
    return buf;
}

int tl_kernel_cache_write(const char *dir, const char *path, const void *data, size_t size) {
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s/.tmp-kernels-XXXXXX", dir);
    int fd = mkstemp(tmp); // mode 0600
    if (fd < 0) return -1;
    fchmod(fd, 0600);
    const char *p = data;
    size_t left = size;
    int ok = 1;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w <= 0) {
            if (w < 0 && errno == EINTR) continue;
            ok = 0;
            break;
        }
        p += w;
        left -= (size_t)w;
    }
    if (ok && fsync(fd) != 0) ok = 0;
    if (close(fd) != 0) ok = 0;
    if (ok && rename(tmp, path) != 0) ok = 0;
    if (!ok) unlink(tmp);
    return ok ? 0 : -1;
}

int tl_kernel_cache_path(const char *arch, const char *const *opts, int nopts, int is_cubin, char *dir, size_t dirlen,
                         char *path, size_t pathlen) {
    const char *source = tl_cuda_kernel_source();
    uint64_t h = fnv1a(0xcbf29ce484222325ull, source, strlen(source));
    for (int i = 0; i < nopts; i++) h = fnv1a(h, opts[i], strlen(opts[i]) + 1);
    if (cache_dir(dir, dirlen) != 0 || cache_dir_ready(dir) != 0) return 1;
    snprintf(path, pathlen, "%s/%016llx-%s-nvrtc%d.%d.%s", dir, (unsigned long long)h, arch, tl_nvrtc_major,
             tl_nvrtc_minor, is_cubin ? "cubin" : "ptx");
    return 0;
}

int tl_cuda_kernel_cache_dir(char *buf, size_t len) {
    char dir[1024];
    if (cache_dir(dir, sizeof dir) != 0) dir[0] = '\0';
    tl_cuda_copy_message(buf, len, dir);
    return TL_CUDA_OK;
}

