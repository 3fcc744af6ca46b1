/*
 * dlhandle_race.c — shows a PoCL bug with plain OpenCL, no safeinfer code (evidence for the work-around in
 * src/device/ocl/ocl.c, "PoCL's kernel cache"; not run by ctest: it aborts on the PoCL it was written for).
 *
 * One context and one program; every thread has its own command queue, kernel object and buffer, and nothing
 * else is shared. In each round every thread launches the same kernel with the same local size (16) but its
 * own, never-seen-before grid width, then waits for it. With PoCL 3.1 (Debian 12's pocl-opencl-icd) and three
 * or more threads this aborts within a few rounds:
 *
 *     dlhandle_race: ./lib/CL/devices/common.c:909: pocl_release_dlhandle_cache: Assertion
 *     `found->ref_count > 0' failed.
 *
 * With --same every thread uses one width per round (no new grid while others run), and with --alone the
 * threads take turns (a mutex around enqueue + finish); neither aborts.
 *
 *   dlhandle_race [THREADS=4] [ROUNDS=30] [--same | --alone]
 */
#define _POSIX_C_SOURCE 200809L /* pthread_barrier_t */
#include <CL/cl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *src = "__kernel void k(__global float *a, int n) { int i = get_global_id(0); if (i < n) { float s = a[i];"
                         " for (int j = 0; j < 20000; j++) s = s * 0.999f + 1.0f; a[i] = s; } }";
static cl_context ctx;
static cl_device_id dev;
static cl_program prog;
static int n_threads = 4, rounds = 30, same, alone;
static pthread_barrier_t bar;
static pthread_mutex_t turn = PTHREAD_MUTEX_INITIALIZER;

static void *worker(void *arg) {
    int t = (int)(long)arg;
    cl_int e;
    cl_command_queue q = clCreateCommandQueue(ctx, dev, 0, &e);
    cl_kernel k = clCreateKernel(prog, "k", &e);
    size_t maxw = 16 * (size_t)(n_threads * rounds + n_threads);
    cl_mem b = clCreateBuffer(ctx, CL_MEM_READ_WRITE, maxw * sizeof(float), NULL, &e);
    cl_int n = (cl_int)maxw;
    clSetKernelArg(k, 0, sizeof b, &b);
    clSetKernelArg(k, 1, sizeof n, &n);
    for (int r = 0; r < rounds; r++) {
        size_t lws = 16, gws = 16 * (size_t)(n_threads * r + (same ? 0 : t) + 1);
        pthread_barrier_wait(&bar);
        if (alone) pthread_mutex_lock(&turn);
        if ((e = clEnqueueNDRangeKernel(q, k, 1, NULL, &gws, &lws, 0, NULL, NULL)) != CL_SUCCESS) {
            fprintf(stderr, "clEnqueueNDRangeKernel: %d\n", e);
            exit(1);
        }
        clFinish(q);
        if (alone) pthread_mutex_unlock(&turn);
    }
    clReleaseMemObject(b);
    clReleaseKernel(k);
    clReleaseCommandQueue(q);
    return NULL;
}

int main(int argc, char **argv) {
    int pos = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--same")) same = 1;
        else if (!strcmp(argv[i], "--alone")) alone = 1;
        else if (pos++ == 0) n_threads = atoi(argv[i]);
        else rounds = atoi(argv[i]);
    }
    if (n_threads < 1 || n_threads > 64 || rounds < 1) return 2;
    cl_platform_id plat;
    cl_int e;
    char ver[256] = "";
    if (clGetPlatformIDs(1, &plat, NULL) != CL_SUCCESS || clGetDeviceIDs(plat, CL_DEVICE_TYPE_ALL, 1, &dev, NULL) != CL_SUCCESS) {
        fprintf(stderr, "no OpenCL device\n");
        return 77;
    }
    clGetPlatformInfo(plat, CL_PLATFORM_VERSION, sizeof ver - 1, ver, NULL);
    printf("%s\n%d threads, %d rounds%s%s\n", ver, n_threads, rounds, same ? ", one width per round" : "", alone ? ", taking turns" : "");
    fflush(stdout);
    ctx = clCreateContext(NULL, 1, &dev, NULL, NULL, &e);
    prog = clCreateProgramWithSource(ctx, 1, &src, NULL, &e);
    if ((e = clBuildProgram(prog, 1, &dev, "", NULL, NULL)) != CL_SUCCESS) {
        fprintf(stderr, "clBuildProgram: %d\n", e);
        return 1;
    }
    pthread_barrier_init(&bar, NULL, (unsigned)n_threads);
    pthread_t th[64];
    for (int t = 0; t < n_threads; t++) pthread_create(&th[t], NULL, worker, (void *)(long)t);
    for (int t = 0; t < n_threads; t++) pthread_join(th[t], NULL);
    clReleaseProgram(prog);
    clReleaseContext(ctx);
    printf("no abort\n");
    return 0;
}
