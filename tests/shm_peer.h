/* SPDX-License-Identifier: MIT */
/*
 * The peer process of tests/shm_test.c and its command protocol.
 *
 * The test drives the far end of an shm pipe, which lives in a child
 * process (forked, or the tests/shm_peer.c helper after exec), through a
 * control socketpair: it sends one struct sp_cmd, the child runs it on its
 * end and answers one struct sp_reply. The child serves until the control
 * socket reads EOF (then it closes its end, if still open, and exits 0).
 * The peer's death is the test's SIGKILL: no command for it.
 *
 * Both sides move pattern bytes (tu_pattern) as streams: each direction
 * has its own seed and position, every byte read is checked against the
 * pattern at its position, and an FNV-1a checksum of each direction is
 * kept by the writer and by the reader, so that the test can compare them
 * after a transfer (order, loss, duplication).
 */
#ifndef MEMPIPE_TEST_SHM_PEER_H
#define MEMPIPE_TEST_SHM_PEER_H

#include "mempipe.h"

#include <stdint.h>
#include <sys/types.h>

/* The commands; arg is a byte count unless said otherwise. The reply's rc
 * is the call's result: a count, 0 (EOF, or success) or a negative errno. */
enum sp_op {
    SP_W = 1,  /* blocking writes (mempipe_write) of arg bytes */
    SP_WPOLL,  /* one mempipe_poll_write of up to arg bytes */
    SP_R,      /* blocking reads until arg bytes, EOF or an error */
    SP_RPOLL,  /* one mempipe_poll_read of up to arg bytes */
    SP_ZW,     /* arg bytes written in place (write_reserve, write_commit) */
    SP_ZR,     /* arg bytes read in place (read_peek, read_consume) */
    SP_SHUT,   /* mempipe_shutdown */
    SP_SHUTRD, /* mempipe_shutdown_read */
    SP_CLOSE,  /* mempipe_close */
    SP_ABORT,  /* mempipe_abort */
    SP_ERR,    /* mempipe_close_with_error(end, arg) */
    SP_CAP     /* mempipe_capacity */
};

/* "Until EOF" for SP_R and sp_read. */
#define SP_ALL INT64_MAX

struct sp_cmd {
    int32_t op;
    int32_t pad;
    int64_t arg;
};

/* A direction's bytes: how many moved, their checksum. */
struct sp_dir {
    uint64_t seed, pos, sum;
};

/* One side's two streams; bad is the stream position of the first byte
 * read that did not match the pattern, or -1. */
struct sp_stream {
    struct sp_dir rd, wr;
    int64_t bad;
};

struct sp_reply {
    int64_t rc;
    int64_t
        fds; /* the attach reply: descriptors it left open (after - before) */
    struct sp_stream s;
};

/* peer 0: the test's streams; 1: the child's (the seeds crossed). */
void sp_init(struct sp_stream *s, int peer);

/* FNV-1a of n more bytes. */
uint64_t sp_sum(uint64_t h, const unsigned char *p, size_t n);

/* The calls on the pattern streams, each returning as the mempipe call it
 * names. sp_write: blocking writes of n bytes in pieces; the total, or
 * the first error if no byte went. sp_read: blocking reads until n bytes
 * (SP_ALL: until EOF), EOF or an error; the total, or the error when no
 * byte came. sp_zwrite, sp_zread: the same through the zero-copy windows,
 * waiting with mempipe_wait_writable/_readable (a time limit of tmo_ms). */
ssize_t sp_write(struct sp_stream *s, mempipe *e, int64_t n);
ssize_t sp_read(struct sp_stream *s, mempipe *e, int64_t n);
ssize_t sp_poll_write(struct sp_stream *s, mempipe *e, size_t n,
                      const mempipe_waker *w);
ssize_t sp_poll_read(struct sp_stream *s, mempipe *e, size_t n,
                     const mempipe_waker *w);
ssize_t sp_zwrite(struct sp_stream *s, mempipe *e, int64_t n, int tmo_ms);
ssize_t sp_zread(struct sp_stream *s, mempipe *e, int64_t n, int tmo_ms);

/* The child: attaches fd (closing it at once: R68), answers with the
 * attach's rc and the descriptors it left, then serves ctl. Returns the
 * exit status (0; 2 if the control socket failed). */
int sp_attach_serve(int fd, int ctl);

#endif
