/* SPDX-License-Identifier: MIT */
/*
 * sockfd: the kernel side of mempipe_fd(). A private AF_UNIX stream
 * socketpair {s0, s1} per end: s0 is the fd the user polls, s1 the
 * library's handle on it. Each function puts one part of s0's poll state
 * where fd.c wants it, by filling and draining queues and by one-way
 * shutdowns; none knows about pipes or locks (fd.c calls them under the
 * watch lock of the part's pipe). The two parts touch disjoint kernel
 * state, so the read part and the write part of one socket may be changed
 * at the same time from two threads:
 *
 *   read part:  s0's receive queue (a byte from s1: POLLIN) and s0's
 *               receive side (shutdown(s1, SHUT_WR): POLLIN | POLLRDHUP);
 *   write part: s1's receive queue (bytes from s0 until s0's send buffer is
 *               full: no POLLOUT) and s0's send side (shutdown(s1, SHUT_RD));
 *               both sides shut: POLLHUP.
 */
#ifndef MEMPIPE_SOCKFD_H
#define MEMPIPE_SOCKFD_H

#include <stdbool.h>
#include <stddef.h>

/*
 * A part's states, as fd.c's `on` holds them: OFF (not ready), ON (ready),
 * SHUT (ready for good, and that side of s0 shut down). SHUT is final.
 */
#define MEMPIPE__SOCK_OFF  0
#define MEMPIPE__SOCK_ON   1
#define MEMPIPE__SOCK_SHUT 2

/* Bytes of the scratch buffer a write part drains into (mempipe__alloc). */
#define MEMPIPE__SOCK_SCRATCH 8192

/*
 * Makes the pair, non-blocking and close-on-exec, with s0's send buffer as
 * small as the kernel allows. Its parts start as a fresh socket is: the
 * read part OFF, the write part ON. A side the end does not have starts
 * SHUT (a simplex writer never reads: reads=false; a simplex reader never
 * writes: writes=false). Returns 0 or a negative errno value (-EMFILE,
 * -ENFILE, -ENOMEM, ...), and then nothing is left open.
 */
int mempipe__sock_open(int s[2], bool reads, bool writes);

/* Closes s0 (the user's, first: nobody's pollers see s1 go) and s1. */
void mempipe__sock_close(const int s[2]);

/*
 * Moves the read part from state `from` to `to` (different; from is not
 * SHUT) and returns the state it reached: `to`, or `from` if the kernel
 * refused (no memory for the byte; the caller retries on its next change).
 */
int mempipe__sock_read_to(const int s[2], int from, int to);

/* The same for the write part; scratch has MEMPIPE__SOCK_SCRATCH bytes. */
int mempipe__sock_write_to(const int s[2], int from, int to,
                           unsigned char *scratch);

#endif
