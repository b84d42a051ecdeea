/* SPDX-License-Identifier: MIT */
/*
 * The libevent adapter, built against an installed mempipe: a read parks
 * with a waker that activates a libevent event, and the loop finishes it.
 * It calls libevent and, as <mempipe/event.h> asks of waker users,
 * evthread_use_pthreads() from libevent_pthreads, so it links only if the
 * adapter's target (or mempipe-event.pc) brings both along.
 */
#include <mempipe/event.h>

#include <errno.h>
#include <event2/thread.h>
#include <stdio.h>
#include <string.h>

static mempipe *reader;
static char got[16];

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    mempipe_poll_read(reader, got, sizeof got - 1, NULL);
}

int main(void)
{
    mempipe *a;
    if (evthread_use_pthreads() != 0 || mempipe_duplex(64, &a, &reader) != 0)
        return 1;
    struct event_base *base = event_base_new();
    struct event *ev = event_new(base, -1, 0, on_wake, NULL);
    if (base == NULL || ev == NULL)
        return 1;
    char buf[1];
    mempipe_waker waker = mempipe_event_waker(ev);
    int parked = mempipe_poll_read(reader, buf, sizeof buf, &waker) == -EAGAIN;
    mempipe_write(a, "over libevent", 13); /* the waker activates ev */
    event_base_loop(base, EVLOOP_ONCE);
    mempipe_close(a);
    mempipe_close(reader);
    event_free(ev);
    event_base_free(base);
    int ok = parked && strcmp(got, "over libevent") == 0;
    printf("mempipe-event with libevent %s: %s\n", event_get_version(),
           ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
