/*
 * children.h — the child processes of this one, read from /proc (Linux). Shared by test_isolate.c (the helper
 * processes it starts) and the consumer program of tests/install.sh (which helper program the installed library
 * starts); needs only libc.
 */
#ifndef SI_TEST_CHILDREN_H
#define SI_TEST_CHILDREN_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Call fn(pid, comm, state, arg) for each child of this process (comm: the kernel's name of its program, at most
 * 15 characters; state: R, S, Z, ...); the number of children. */
static int for_each_child(void (*fn)(int pid, const char *comm, char state, void *arg), void *arg) {
    int n = 0;
    DIR *d = opendir("/proc");
    for (struct dirent *e; d && (e = readdir(d));) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        char path[64], buf[512];
        snprintf(path, sizeof path, "/proc/%.32s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        size_t k = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[k] = 0;
        char *open = strchr(buf, '('), *close = strrchr(buf, ')');
        if (!open || !close) continue;
        *close = 0;
        char state = 0;
        int ppid = 0;
        if (sscanf(close + 2, "%c %d", &state, &ppid) != 2 || ppid != getpid()) continue;
        fn(atoi(e->d_name), open + 1, state, arg);
        n++;
    }
    if (d) closedir(d);
    return n;
}

#endif
