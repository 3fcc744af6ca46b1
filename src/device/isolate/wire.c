/*
 * wire.c — buffers, frames and shared-memory segments of the isolated device (see wire.h).
 */
#include "device/isolate/wire.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/thread.h"

// --- buffers --------------------------------------------------------------------------------------------

void wb_free(si_wbuf *b) {
    si_free(b->p);
    *b = (si_wbuf){0};
}

void wb_bytes(si_wbuf *b, const void *p, size_t n) {
    if (b->oom || !n) return;
    if (n > SIZE_MAX / 2 - b->n) { b->oom = true; return; }
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) cap *= 2;
        uint8_t *q = si_realloc(b->p, cap);
        if (!q) { b->oom = true; return; }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

void wb_u8(si_wbuf *b, uint8_t v) { wb_bytes(b, &v, 1); }
void wb_u32(si_wbuf *b, uint32_t v) { wb_bytes(b, &v, 4); }
void wb_i32(si_wbuf *b, int32_t v) { wb_bytes(b, &v, 4); }
void wb_u64(si_wbuf *b, uint64_t v) { wb_bytes(b, &v, 8); }
void wb_i64(si_wbuf *b, int64_t v) { wb_bytes(b, &v, 8); }
void wb_f32(si_wbuf *b, float v) { wb_bytes(b, &v, 4); }

void wb_str(si_wbuf *b, const char *s) {
    if (!s) { wb_u32(b, UINT32_MAX); return; }
    size_t n = strlen(s);
    if (n >= UINT32_MAX) { b->oom = true; return; }
    wb_u32(b, (uint32_t)n);
    wb_bytes(b, s, n);
}

void wb_shape(si_wbuf *b, si_dtype dtype, int ndim, const int64_t *dims) {
    wb_i32(b, (int32_t)dtype);
    wb_i32(b, ndim);
    for (int i = 0; i < ndim; i++) wb_i64(b, dims[i]);
}

const void *rb_bytes(si_rbuf *r, size_t n) {
    if (r->bad || n > r->n - r->pos) {
        r->bad = true;
        return NULL;
    }
    const void *p = r->p + r->pos;
    r->pos += n;
    return p;
}

#define RB_SCALAR(name, type)                                                                                  \
    type name(si_rbuf *r) {                                                                                    \
        type v = 0;                                                                                            \
        const void *p = rb_bytes(r, sizeof v);                                                                 \
        if (p) memcpy(&v, p, sizeof v);                                                                        \
        return v;                                                                                              \
    }
RB_SCALAR(rb_u8, uint8_t)
RB_SCALAR(rb_u32, uint32_t)
RB_SCALAR(rb_i32, int32_t)
RB_SCALAR(rb_u64, uint64_t)
RB_SCALAR(rb_i64, int64_t)
RB_SCALAR(rb_f32, float)

char *rb_str(si_rbuf *r, bool *was_null) {
    if (was_null) *was_null = false;
    uint32_t n = rb_u32(r);
    if (r->bad) return NULL;
    if (n == UINT32_MAX) {
        if (was_null) *was_null = true;
        return NULL;
    }
    const char *p = rb_bytes(r, n);
    if (!p) return NULL;
    char *s = si_malloc((size_t)n + 1);
    if (!s) { r->bad = true; return NULL; }
    memcpy(s, p, n);
    s[n] = 0;
    return s;
}

void rb_str_into(si_rbuf *r, char *buf, size_t n) {
    buf[0] = 0;
    uint32_t len = rb_u32(r);
    if (r->bad || len == UINT32_MAX) return;
    const char *p = rb_bytes(r, len);
    if (!p) return;
    size_t k = SI_MIN((size_t)len, n - 1);
    memcpy(buf, p, k);
    buf[k] = 0;
}

uint32_t rb_count(si_rbuf *r, uint32_t max) {
    uint32_t n = rb_u32(r);
    if (n > max) r->bad = true;
    return r->bad ? 0 : n;
}

static bool dtype_known(int32_t t) { return (t >= 0 && t <= 13) || t == 16; }

void rb_shape(si_rbuf *r, si_dtype *dtype, int *ndim, int64_t *dims, bool allow_unknown) {
    int32_t t = rb_i32(r), nd = rb_i32(r);
    *dtype = SI_DTYPE_UNDEFINED;
    *ndim = allow_unknown ? -1 : 0;
    if (r->bad) return;
    if (!dtype_known(t) || (!allow_unknown && !si_dtype_size((si_dtype)t)) || nd < (allow_unknown ? -1 : 0) ||
        nd > SI_MAX_DIMS) {
        r->bad = true;
        return;
    }
    for (int i = 0; i < nd; i++) {
        dims[i] = rb_i64(r);
        if (allow_unknown ? dims[i] != -1 && !si_dim_valid(dims[i]) : dims[i] < 0) r->bad = true; /* sizes, unknown, symbols */
    }
    if (r->bad) return;
    *dtype = (si_dtype)t;
    *ndim = nd;
}

size_t si_wire_nbytes(si_dtype dtype, int ndim, const int64_t *dims) {
    size_t n = si_dtype_size(dtype);
    if (!n || ndim < 0 || ndim > SI_MAX_DIMS) return SIZE_MAX;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] < 0) return SIZE_MAX;
        if (dims[i] && n > SIZE_MAX / 4 / (uint64_t)dims[i]) return SIZE_MAX;
        n *= (size_t)dims[i];
    }
    return n;
}

size_t si_wire_align(size_t n) {
    if (n > SIZE_MAX - SI_WIRE_ALIGN) return SIZE_MAX;
    return (n + SI_WIRE_ALIGN - 1) / SI_WIRE_ALIGN * SI_WIRE_ALIGN;
}

// --- frames ---------------------------------------------------------------------------------------------

typedef struct frame_hdr {
    uint32_t type, len;
} frame_hdr;

static si_result lost_errno(const char *what, int e) {
    if (e == EPIPE || e == ECONNRESET) return si_err(SI_ERR_DEVICE_LOST, "the connection is closed (%s)", what);
    return si_err(SI_ERR_DEVICE_LOST, "%s failed: %s", what, strerror(e));
}

si_result si_wire_send(int sock, uint32_t type, const si_wbuf *payload, const int *fds, int nfds) {
    if (payload && payload->oom) return si_err(SI_ERR_NO_MEM, "out of memory encoding a message for the helper process");
    size_t len = payload ? payload->n : 0;
    if (len > SI_WIRE_MAX_FRAME)
        return si_err(SI_ERR_UNSUPPORTED, "a message of %zu bytes is larger than the %zu allowed", len, SI_WIRE_MAX_FRAME);
    if (nfds < 0 || nfds > SI_WIRE_MAX_FDS) return si_err(SI_ERR_INTERNAL, "%d file descriptors in one message", nfds);
    frame_hdr h = {type, (uint32_t)len};
    union {
        char buf[CMSG_SPACE(sizeof(int) * SI_WIRE_MAX_FDS)];
        struct cmsghdr align;
    } ctl;
    size_t sent = 0, total = sizeof h + len;
    bool fds_sent = nfds == 0;
    while (sent < total) {
        struct iovec iov[2];
        int niov = 0;
        if (sent < sizeof h) iov[niov++] = (struct iovec){(char *)&h + sent, sizeof h - sent};
        size_t poff = sent < sizeof h ? 0 : sent - sizeof h;
        if (len > poff) iov[niov++] = (struct iovec){payload->p + poff, len - poff};
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)niov};
        if (!fds_sent) {
            memset(&ctl, 0, sizeof ctl);
            m.msg_control = ctl.buf;
            m.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
            struct cmsghdr *c = CMSG_FIRSTHDR(&m);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
            memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
        }
        ssize_t k = sendmsg(sock, &m, MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EINTR) continue;
            return lost_errno("sending to the helper process", errno);
        }
        fds_sent = true;
        sent += (size_t)k;
    }
    return SI_OK;
}

void si_wire_close_fds(int *fds, int nfds) {
    for (int i = 0; i < nfds; i++)
        if (fds[i] >= 0) {
            close(fds[i]);
            fds[i] = -1;
        }
}

/* Read exactly n bytes into p, collecting any fds. */
static si_result recv_all(int sock, void *p, size_t n, int *fds, int *nfds, double deadline_ms) {
    size_t got = 0;
    while (got < n) {
        if (deadline_ms >= 0) {
            double left = deadline_ms - si_mono_ms();
            struct pollfd pf = {.fd = sock, .events = POLLIN};
            int rc = left > 0 ? poll(&pf, 1, (int)(left + 1)) : 0;
            if (rc < 0 && errno == EINTR) continue;
            if (rc < 0) return lost_errno("waiting for the helper process", errno);
            if (rc == 0) return si_err(SI_ERR_ABORTED, "the helper process did not answer in time");
        }
        union {
            char buf[CMSG_SPACE(sizeof(int) * SI_WIRE_MAX_FDS)];
            struct cmsghdr align;
        } ctl;
        struct iovec iov = {(char *)p + got, n - got};
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
        ssize_t k = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
        if (k < 0 && errno == EINTR) continue;
        for (struct cmsghdr *c = k >= 0 ? CMSG_FIRSTHDR(&m) : NULL; c; c = CMSG_NXTHDR(&m, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
            int cnt = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            for (int i = 0; i < cnt; i++) {
                int fd;
                memcpy(&fd, CMSG_DATA(c) + sizeof(int) * (size_t)i, sizeof fd);
                if (*nfds < SI_WIRE_MAX_FDS) fds[(*nfds)++] = fd;
                else close(fd);
            }
        }
        if (k < 0) return lost_errno("receiving from the helper process", errno);
        if (k == 0) return si_err(SI_ERR_DEVICE_LOST, "the connection is closed");
        if (m.msg_flags & MSG_CTRUNC) return si_err(SI_ERR_DEVICE_LOST, "a message carried too many file descriptors");
        got += (size_t)k;
    }
    return SI_OK;
}

si_result si_wire_recv(int sock, uint32_t *type, si_wbuf *b, int *fds, int *nfds, int timeout_ms) {
    *nfds = 0;
    *type = 0;
    b->n = 0;
    double deadline = timeout_ms >= 0 ? si_mono_ms() + timeout_ms : -1;
    frame_hdr h;
    si_result st = recv_all(sock, &h, sizeof h, fds, nfds, deadline);
    if (!st && h.len > SI_WIRE_MAX_FRAME) st = si_err(SI_ERR_DEVICE_LOST, "a message of %u bytes (at most %zu allowed)", h.len, SI_WIRE_MAX_FRAME);
    if (!st && h.len > b->cap) {
        uint8_t *q = si_realloc(b->p, h.len);
        if (!q) st = si_err(SI_ERR_NO_MEM, "out of memory receiving a message of %u bytes", h.len);
        else {
            b->p = q;
            b->cap = h.len;
        }
    }
    if (!st && h.len) st = recv_all(sock, b->p, h.len, fds, nfds, deadline);
    if (st) {
        si_wire_close_fds(fds, *nfds);
        *nfds = 0;
        return st;
    }
    b->n = h.len;
    *type = h.type;
    return SI_OK;
}

// --- shared memory -------------------------------------------------------------------------------------

int si_shm_create(const char *what, size_t size, bool seal_later) {
    char name[64];
    snprintf(name, sizeof name, "safeinfer-%s", what);
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) {
        si_err(SI_ERR_NO_MEM, "cannot create shared memory for %s: %s", what, strerror(errno));
        return -1;
    }
    if (size > (size_t)INT64_MAX || ftruncate(fd, (off_t)size) != 0) {
        si_err(SI_ERR_NO_MEM, "cannot size shared memory for %s to %zu bytes: %s", what, size, strerror(errno));
        close(fd);
        return -1;
    }
    /* the size is fixed from now on: a mapping of it can never lose its pages under the reader */
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | (seal_later ? 0 : F_SEAL_SEAL)) != 0) {
        si_err(SI_ERR_NO_MEM, "cannot seal shared memory for %s: %s", what, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

long long si_shm_size(int fd) {
    struct stat s;
    if (fstat(fd, &s) != 0) return -1;
    return (long long)s.st_size;
}
