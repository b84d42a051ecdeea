/* SPDX-License-Identifier: MIT */
/*
 * The mbedTLS adapter: BIO callbacks whose context is the end. It knows
 * only the public API: mempipe_poll_* to never block, mempipe_read/write to
 * block, and the readable fd for a timed wait.
 */
#include "mempipe/mbedtls.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <time.h>

#include <mbedtls/net_sockets.h> /* MBEDTLS_ERR_NET_* */
#include <mbedtls/ssl.h>

static size_t clamp(size_t len)
{
    return len > INT_MAX ? INT_MAX : len;
}

static int send_result(ssize_t n)
{
    if (n >= 0)
        return (int)n;
    if (n == -EAGAIN)
        return MBEDTLS_ERR_SSL_WANT_WRITE;
    if (n == -EPIPE)
        return MBEDTLS_ERR_NET_CONN_RESET;
    return MBEDTLS_ERR_NET_SEND_FAILED;
}

static int recv_result(ssize_t n)
{
    if (n >= 0)
        return (int)n; /* 0: end of file, which mbedTLS knows */
    if (n == -EAGAIN)
        return MBEDTLS_ERR_SSL_WANT_READ;
    return MBEDTLS_ERR_NET_RECV_FAILED;
}

int mempipe_mbedtls_send(void *end, const unsigned char *buf, size_t len)
{
    return send_result(mempipe_poll_write(end, buf, clamp(len), NULL));
}

int mempipe_mbedtls_send_blocking(void *end, const unsigned char *buf,
                                  size_t len)
{
    return send_result(mempipe_write(end, buf, clamp(len)));
}

int mempipe_mbedtls_recv(void *end, unsigned char *buf, size_t len)
{
    return recv_result(mempipe_poll_read(end, buf, clamp(len), NULL));
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

int mempipe_mbedtls_recv_timeout(void *end, unsigned char *buf, size_t len,
                                 uint32_t timeout_ms)
{
    if (timeout_ms == 0) /* mbedTLS: 0 is "for ever" */
        return recv_result(mempipe_read(end, buf, clamp(len)));
    ssize_t n = mempipe_poll_read(end, buf, clamp(len), NULL);
    if (n != -EAGAIN)
        return recv_result(n);
    int fd = mempipe_readable_fd(end);
    if (fd < 0)
        return MBEDTLS_ERR_NET_RECV_FAILED;
    double deadline = now_ms() + timeout_ms;
    for (;;) {
        double left = deadline - now_ms();
        if (left <= 0)
            return MBEDTLS_ERR_SSL_TIMEOUT;
        struct pollfd p = {fd, POLLIN, 0};
        int rc = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left + 1);
        if (rc < 0 && errno != EINTR)
            return MBEDTLS_ERR_NET_RECV_FAILED;
        /* Ready (or a spurious wake: the fd may lag the pipe): try. */
        n = mempipe_poll_read(end, buf, clamp(len), NULL);
        if (n != -EAGAIN)
            return recv_result(n);
    }
}
