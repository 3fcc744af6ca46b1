/*
 * program_rss.c — memory of an OpenCL driver over many program builds, with plain OpenCL and no safeinfer
 * code: the same cycle as one OCL compile + request + free in safeinfer (program from kernels.cl built with the
 * OCL device's options, every kernel created, a queue, 8 buffers, LAUNCHES launches of one kernel, a read,
 * everything released), CYCLES times, printing the resident set size (RSS). Every object created is released,
 * so whatever RSS the cycles keep is the driver's. Not run by ctest: numbers for a person to read.
 *
 *   program_rss src/device/ocl/kernels.cl [CYCLES=600] [LAUNCHES=0]
 *
 * With PoCL 3.1 (Debian 12) RSS grows by about 5 KiB per cycle and does not level off (3000 cycles: +15.5 MiB),
 * launches or not.
 */
#include <CL/cl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../../bench/rss.h"

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s KERNELS.cl [CYCLES] [LAUNCHES]\n", argv[0]);
        return 2;
    }
    int cycles = argc > 2 ? atoi(argv[2]) : 600, launches = argc > 3 ? atoi(argv[3]) : 0;
    FILE *f = fopen(argv[1], "rb");
    if (!f || fseek(f, 0, SEEK_END)) return 2;
    long n = ftell(f);
    rewind(f);
    char *src = malloc((size_t)n + 1);
    if (!src || fread(src, 1, (size_t)n, f) != (size_t)n) return 2;
    src[n] = 0;
    fclose(f);
    cl_platform_id plat;
    cl_device_id dev;
    cl_int e;
    if (clGetPlatformIDs(1, &plat, NULL) != CL_SUCCESS || clGetDeviceIDs(plat, CL_DEVICE_TYPE_ALL, 1, &dev, NULL) != CL_SUCCESS) {
        fprintf(stderr, "no OpenCL device\n");
        return 77;
    }
    cl_context ctx = clCreateContext(NULL, 1, &dev, NULL, NULL, &e);
    static float host[4096];
    double first = 0;
    for (int c = 0; c < cycles; c++) {
        cl_program p = clCreateProgramWithSource(ctx, 1, (const char **)&src, NULL, &e);
        if ((e = clBuildProgram(p, 1, &dev, "-cl-std=CL1.2 -DSI_TS=16 -DSI_WG=64", NULL, NULL)) != CL_SUCCESS) {
            fprintf(stderr, "clBuildProgram: %d\n", e);
            return 1;
        }
        cl_kernel ks[256];
        cl_uint nk = 0;
        clCreateKernelsInProgram(p, 256, ks, &nk);
        cl_command_queue q = clCreateCommandQueue(ctx, dev, 0, &e);
        cl_mem b[8];
        for (int i = 0; i < 8; i++) b[i] = clCreateBuffer(ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, sizeof host, host, &e);
        cl_kernel k = clCreateKernel(p, "u_relu", &e); /* (X, Y, n, a, b) */
        if (e != CL_SUCCESS) {
            fprintf(stderr, "clCreateKernel u_relu: %d\n", e);
            return 1;
        }
        cl_int cnt = 4096;
        cl_float z = 0;
        clSetKernelArg(k, 0, sizeof b[0], &b[0]);
        clSetKernelArg(k, 1, sizeof b[1], &b[1]);
        clSetKernelArg(k, 2, sizeof cnt, &cnt);
        clSetKernelArg(k, 3, sizeof z, &z);
        clSetKernelArg(k, 4, sizeof z, &z);
        for (int l = 0; l < launches; l++) {
            size_t g = 4096, lw = 64;
            clEnqueueNDRangeKernel(q, k, 1, NULL, &g, &lw, 0, NULL, NULL);
        }
        clEnqueueReadBuffer(q, b[1], CL_TRUE, 0, sizeof host, host, 0, NULL, NULL);
        clFinish(q);
        clReleaseKernel(k);
        for (cl_uint i = 0; i < nk; i++) clReleaseKernel(ks[i]);
        for (int i = 0; i < 8; i++) clReleaseMemObject(b[i]);
        clReleaseCommandQueue(q);
        clReleaseProgram(p);
        if (c == 0) first = rss_mib();
        if ((c + 1) % (cycles >= 6 ? cycles / 6 : 1) == 0) printf("cycle %d: RSS %.1f MiB\n", c + 1, rss_mib());
        fflush(stdout);
    }
    double last = rss_mib();
    printf("%d cycles, %d launches each: RSS after cycle 1 %.1f MiB, at the end %.1f MiB, growth %.1f MiB\n", cycles, launches, first,
           last, last - first);
    clReleaseContext(ctx);
    free(src);
    return 0;
}
