/* SPDX-License-Identifier: MIT */
/*
 * mempipe_strerror: every message from one table, the one source of truth:
 * tests/errors_test.c fails if a header documents a code missing here, or if
 * the header, README.md or docs/ quote a message other than the table's.
 */
#include "mempipe.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>

static const struct {
    int code;
    const char *msg;
} table[] = {
    {0, "success"},
    {EAGAIN, "resource temporarily unavailable: the pipe is empty or full"},
    {EPIPE, "broken pipe: the pipe is shut down or the other end is closed"},
    {EINVAL, "invalid argument"},
    {EBADF, "bad end: wrong direction for this end"},
    {ENOMEM, "out of memory"},
    {ETIMEDOUT, "timed out"},
    {ECONNRESET, "connection reset by the other end"},
    {EBUSY, "busy: a zero-copy window is open, pipes exist (allocator), or "
            "the shm pipe's other end is attached"},
    {ENOSYS, "not supported on this platform"},
    {EMFILE, "too many open files"},
    {ENFILE, "too many open files in the system"},
    {ENODEV, "no such device: the kernel cannot make an eventfd"},
    {EEXIST, "exists: another handle already watches this fd"},
    {EIO, "input/output error: the event loop refused the change"},
    {EPROTO, "protocol error: the peer broke the protocol or the script"},
    {ENOTSOCK, "not a socket or pipe: a bridge needs a stream fd"},
    {EPROTOTYPE, "wrong socket type: a bridge needs SOCK_STREAM"},
    {ENOTCONN, "not connected: a bridge needs a connected socket"},
    {EOPNOTSUPP, "not supported: no shared-memory pipes on this system"},
};

const char *mempipe_strerror(int err)
{
    if (err == INT_MIN) /* has no positive form */
        return "unknown error";
    int code = err < 0 ? -err : err;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (table[i].code == code)
            return table[i].msg;
    return "unknown error";
}
