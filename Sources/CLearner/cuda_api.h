// The part of the CUDA toolkit's C API that the shim calls: driver API (cuda.h), NVRTC (nvrtc.h)
// and cuBLAS (cublas_api.h with cublas_v2.h's names), declared here as CUDA 11.8's headers
// declare them, so that the CUDA layer is compiled on every machine: the libraries are loaded
// at run time (cuda_loader.c) and no toolkit header is needed to build. Only types, constants
// and prototypes for __typeof__; nothing here is linked.
//
// Each declaration is checked against the toolkit's own: Scripts/cuda-abi-check compiles this
// file after the real headers with TL_CUDA_API_CHECK defined, where every typedef is repeated
// (an error unless the same), every renaming macro redefined (an error unless the same), and
// every enum constant and prototype becomes a compile-time assertion that it equals the
// header's (run by the test suite where the headers are installed, as in CI). Declaring them
// here rather than including the toolkit's headers is deliberate: built against the headers,
// a machine whose toolkit sat outside the compiler's search path (NVIDIA's /usr/local/cuda)
// silently got a CPU-only build; the check keeps these copies equal to the originals. 11.8's ABI is the
// one every CUDA 11.3+ driver serves (cuGetProcAddress is asked for it), so a newer toolkit adds
// nothing the shim uses.
#ifndef TL_CUDA_API_H
#define TL_CUDA_API_H

#include <stddef.h>
#include <stdint.h>

// The ABI version cuGetProcAddress is asked for (cuda.h's CUDA_VERSION of 11.8).
#define TL_CUDA_ABI_VERSION 11080

// ------------------------------------------------------------------ types and constants
// The enum types with the constants the shim uses: C(name, value) for each.
#define TL_CU_RESULTS(C)                                                                        \
    C(CUDA_SUCCESS, 0) C(CUDA_ERROR_OUT_OF_MEMORY, 2) C(CUDA_ERROR_NO_DEVICE, 100)              \
    C(CUDA_ERROR_INVALID_DEVICE, 101) C(CUDA_ERROR_NOT_READY, 600)
#define TL_CU_DEVICE_ATTRIBUTES(C)                                                              \
    C(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 16) C(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, 75) \
    C(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, 76)
#define TL_CU_JIT_OPTIONS(C) C(CU_JIT_ERROR_LOG_BUFFER, 5) C(CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES, 6)
#define TL_CU_STREAM_FLAGS(C) C(CU_STREAM_NON_BLOCKING, 1)
#define TL_CU_EVENT_FLAGS(C) C(CU_EVENT_DEFAULT, 0)
#define TL_CU_PROC_ADDRESS_FLAGS(C) C(CU_GET_PROC_ADDRESS_DEFAULT, 0)
#define TL_NVRTC_RESULTS(C) C(NVRTC_SUCCESS, 0)
#define TL_CUBLAS_STATUSES(C) C(CUBLAS_STATUS_SUCCESS, 0) C(CUBLAS_STATUS_ALLOC_FAILED, 3)
#define TL_CUBLAS_OPERATIONS(C) C(CUBLAS_OP_N, 0) C(CUBLAS_OP_T, 1)
#define TL_CUBLAS_MATH_MODES(C) C(CUBLAS_DEFAULT_MATH, 0) C(CUBLAS_TF32_TENSOR_OP_MATH, 3)
#define TL_LIBRARY_PROPERTIES(C) C(MAJOR_VERSION, 0) C(MINOR_VERSION, 1) C(PATCH_LEVEL, 2)

// Every enum: (typedef name, its constants).
#define TL_API_ENUMS(E)                                                                         \
    E(CUresult, TL_CU_RESULTS) E(CUdevice_attribute, TL_CU_DEVICE_ATTRIBUTES)                    \
    E(CUjit_option, TL_CU_JIT_OPTIONS) E(CUstream_flags, TL_CU_STREAM_FLAGS)                     \
    E(CUevent_flags, TL_CU_EVENT_FLAGS) E(CUdriverProcAddress_flags, TL_CU_PROC_ADDRESS_FLAGS)   \
    E(nvrtcResult, TL_NVRTC_RESULTS) E(cublasStatus_t, TL_CUBLAS_STATUSES)                       \
    E(cublasOperation_t, TL_CUBLAS_OPERATIONS) E(cublasMath_t, TL_CUBLAS_MATH_MODES)             \
    E(libraryPropertyType, TL_LIBRARY_PROPERTIES)

// Plain typedefs, identical to the headers' (C11 allows a typedef to be repeated unchanged,
// which is how the check mode compares them).
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
typedef uint64_t cuuint64_t;
typedef struct CUctx_st *CUcontext;
typedef struct CUstream_st *CUstream;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUevent_st *CUevent;
typedef struct CUstream_st *cudaStream_t;
typedef struct _nvrtcProgram *nvrtcProgram;
typedef struct cublasContext *cublasHandle_t;
// cuMemHostAlloc's flag (a macro in cuda.h).
#define CU_MEMHOSTALLOC_DEVICEMAP 0x02

// The toolkit's renamings: cuda.h and cublas_v2.h map these names to versioned symbols. Where
// the real headers came first (the check), a macro redefined differently is a warning, which
// Scripts/cuda-abi-check makes an error. They are written as cuda.h writes them (its
// per-thread-stream wrapper included, which is the identity without per-thread default streams).
#define __CUDA_API_PTSZ(api) api
#define cuDeviceTotalMem cuDeviceTotalMem_v2
#define cuDevicePrimaryCtxRelease cuDevicePrimaryCtxRelease_v2
#define cuStreamDestroy cuStreamDestroy_v2
#define cuMemAlloc cuMemAlloc_v2
#define cuMemFree cuMemFree_v2
#define cuMemGetInfo cuMemGetInfo_v2
#define cuMemcpyHtoDAsync __CUDA_API_PTSZ(cuMemcpyHtoDAsync_v2)
#define cuMemcpyDtoHAsync __CUDA_API_PTSZ(cuMemcpyDtoHAsync_v2)
#define cuMemcpyDtoDAsync __CUDA_API_PTSZ(cuMemcpyDtoDAsync_v2)
#define cuEventDestroy cuEventDestroy_v2
#define cuMemHostGetDevicePointer cuMemHostGetDevicePointer_v2
#define cublasCreate cublasCreate_v2
#define cublasDestroy cublasDestroy_v2
#define cublasSetStream cublasSetStream_v2
#define cublasSgemm cublasSgemm_v2


// ------------------------------------------------------------------ functions
// (return type, name as the shim writes it, parameters); the name goes through the renames.
#define TL_API_FUNCTIONS(F)                                                                     \
    F(CUresult, cuGetErrorString, (CUresult error, const char **pStr))                          \
    F(CUresult, cuGetErrorName, (CUresult error, const char **pStr))                            \
    F(CUresult, cuInit, (unsigned int Flags))                                                   \
    F(CUresult, cuDriverGetVersion, (int *driverVersion))                                       \
    F(CUresult, cuDeviceGet, (CUdevice * device, int ordinal))                                  \
    F(CUresult, cuDeviceGetCount, (int *count))                                                 \
    F(CUresult, cuDeviceGetName, (char *name, int len, CUdevice dev))                           \
    F(CUresult, cuDeviceGetAttribute, (int *pi, CUdevice_attribute attrib, CUdevice dev))        \
    F(CUresult, cuDeviceTotalMem, (size_t * bytes, CUdevice dev))                               \
    F(CUresult, cuDevicePrimaryCtxRetain, (CUcontext * pctx, CUdevice dev))                     \
    F(CUresult, cuDevicePrimaryCtxRelease, (CUdevice dev))                                      \
    F(CUresult, cuCtxSetCurrent, (CUcontext ctx))                                               \
    F(CUresult, cuCtxGetCurrent, (CUcontext * pctx))                                            \
    F(CUresult, cuCtxSynchronize, (void))                                                       \
    F(CUresult, cuStreamCreate, (CUstream * phStream, unsigned int Flags))                      \
    F(CUresult, cuStreamDestroy, (CUstream hStream))                                            \
    F(CUresult, cuStreamSynchronize, (CUstream hStream))                                        \
    F(CUresult, cuMemAlloc, (CUdeviceptr * dptr, size_t bytesize))                              \
    F(CUresult, cuMemFree, (CUdeviceptr dptr))                                                  \
    F(CUresult, cuMemGetInfo, (size_t * free, size_t * total))                                  \
    F(CUresult, cuMemcpyHtoDAsync, (CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount, CUstream hStream)) \
    F(CUresult, cuMemcpyDtoHAsync, (void *dstHost, CUdeviceptr srcDevice, size_t ByteCount, CUstream hStream))      \
    F(CUresult, cuMemcpyDtoDAsync, (CUdeviceptr dstDevice, CUdeviceptr srcDevice, size_t ByteCount, CUstream hStream)) \
    F(CUresult, cuModuleLoadData, (CUmodule * module, const void *image))                       \
    F(CUresult, cuModuleLoadDataEx,                                                             \
      (CUmodule * module, const void *image, unsigned int numOptions, CUjit_option *options, void **optionValues))   \
    F(CUresult, cuModuleGetFunction, (CUfunction * hfunc, CUmodule hmod, const char *name))     \
    F(CUresult, cuModuleUnload, (CUmodule hmod))                                                \
    F(CUresult, cuLaunchKernel,                                                                 \
      (CUfunction f, unsigned int gridDimX, unsigned int gridDimY, unsigned int gridDimZ, unsigned int blockDimX,    \
       unsigned int blockDimY, unsigned int blockDimZ, unsigned int sharedMemBytes, CUstream hStream,               \
       void **kernelParams, void **extra))                                                      \
    F(CUresult, cuEventCreate, (CUevent * phEvent, unsigned int Flags))                         \
    F(CUresult, cuEventRecord, (CUevent hEvent, CUstream hStream))                              \
    F(CUresult, cuEventSynchronize, (CUevent hEvent))                                           \
    F(CUresult, cuEventElapsedTime, (float *pMilliseconds, CUevent hStart, CUevent hEnd))       \
    F(CUresult, cuEventDestroy, (CUevent hEvent))                                               \
    F(CUresult, cuMemHostAlloc, (void **pp, size_t bytesize, unsigned int Flags))               \
    F(CUresult, cuMemHostGetDevicePointer, (CUdeviceptr * pdptr, void *p, unsigned int Flags))  \
    F(CUresult, cuMemFreeHost, (void *p))                                                       \
    F(CUresult, cuGetProcAddress, (const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags)) \
    F(const char *, nvrtcGetErrorString, (nvrtcResult result))                                  \
    F(nvrtcResult, nvrtcVersion, (int *major, int *minor))                                      \
    F(nvrtcResult, nvrtcCreateProgram,                                                          \
      (nvrtcProgram * prog, const char *src, const char *name, int numHeaders, const char *const *headers,           \
       const char *const *includeNames))                                                        \
    F(nvrtcResult, nvrtcDestroyProgram, (nvrtcProgram * prog))                                  \
    F(nvrtcResult, nvrtcCompileProgram, (nvrtcProgram prog, int numOptions, const char *const *options))             \
    F(nvrtcResult, nvrtcGetProgramLogSize, (nvrtcProgram prog, size_t *logSizeRet))             \
    F(nvrtcResult, nvrtcGetProgramLog, (nvrtcProgram prog, char *log))                          \
    F(nvrtcResult, nvrtcGetPTXSize, (nvrtcProgram prog, size_t *ptxSizeRet))                    \
    F(nvrtcResult, nvrtcGetPTX, (nvrtcProgram prog, char *ptx))                                 \
    F(nvrtcResult, nvrtcGetCUBINSize, (nvrtcProgram prog, size_t *cubinSizeRet))                \
    F(nvrtcResult, nvrtcGetCUBIN, (nvrtcProgram prog, char *cubin))                             \
    F(nvrtcResult, nvrtcGetNumSupportedArchs, (int *numArchs))                                  \
    F(nvrtcResult, nvrtcGetSupportedArchs, (int *supportedArchs))                               \
    F(cublasStatus_t, cublasCreate, (cublasHandle_t * handle))                                  \
    F(cublasStatus_t, cublasDestroy, (cublasHandle_t handle))                                   \
    F(cublasStatus_t, cublasSetStream, (cublasHandle_t handle, cudaStream_t streamId))          \
    F(cublasStatus_t, cublasSetMathMode, (cublasHandle_t handle, cublasMath_t mode))            \
    F(cublasStatus_t, cublasSgemm,                                                              \
      (cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n, int k,              \
       const float *alpha, const float *A, int lda, const float *B, int ldb, const float *beta, float *C, int ldc))  \
    F(const char *, cublasGetStatusString, (cublasStatus_t status))                             \
    F(cublasStatus_t, cublasGetProperty, (libraryPropertyType type, int *value))                \
    F(cublasStatus_t, cublasSgemmStridedBatched,                                                \
      (cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n, int k,              \
       const float *alpha, const float *A, int lda, long long int strideA, const float *B, int ldb,                 \
       long long int strideB, const float *beta, float *C, int ldc, long long int strideC, int batchCount))

// ------------------------------------------------------------------ the two modes
#ifndef TL_CUDA_API_CHECK

#define TL_API_ENUM_CONSTANT(name, value) name = value,
#define TL_API_ENUM_DECLARE(type, constants) typedef enum { constants(TL_API_ENUM_CONSTANT) } type;
TL_API_ENUMS(TL_API_ENUM_DECLARE)
#undef TL_API_ENUM_DECLARE
#undef TL_API_ENUM_CONSTANT

#define TL_API_PROTOTYPE(ret, name, params) ret name params;
TL_API_FUNCTIONS(TL_API_PROTOTYPE)
#undef TL_API_PROTOTYPE

#else // TL_CUDA_API_CHECK: the real headers are included; every item must equal theirs.

#define TL_API_CHECK_CONSTANT(name, value) _Static_assert((long long)(name) == (value), #name " differs from the toolkit's");
#define TL_API_CHECK_ENUM(type, constants)                                                      \
    _Static_assert(sizeof(type) == sizeof(int), #type " is not int-sized in the toolkit");       \
    constants(TL_API_CHECK_CONSTANT)
TL_API_ENUMS(TL_API_CHECK_ENUM)
#undef TL_API_CHECK_ENUM

#define TL_API_CHECK_PROTOTYPE(ret, name, params)                                               \
    _Static_assert(__builtin_types_compatible_p(__typeof__(&name), ret(*) params), #name " differs from the toolkit's");
TL_API_FUNCTIONS(TL_API_CHECK_PROTOTYPE)

#endif

#endif
