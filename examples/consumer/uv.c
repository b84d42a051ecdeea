/* SPDX-License-Identifier: MIT */
/*
 * The libuv adapter, built against an installed mempipe: a libuv loop
 * watches one end and reads what the other end wrote. It calls libuv
 * itself, so it links only if the adapter's target (or mempipe-uv.pc)
 * brings libuv along.
 */
#include <mempipe/uv.h>

#include <stdio.h>
#include <string.h>

static char got[16];

static void on_ready(mempipe_uv_watch *w, int status, int events)
{
    mempipe *end = w->data;
    if (status == 0 && (events & MEMPIPE_UV_READABLE) &&
        mempipe_poll_read(end, got, sizeof got - 1, NULL) > 0)
        mempipe_uv_watch_close(w, NULL);
}

int main(void)
{
    uv_loop_t loop;
    mempipe_uv_watch w;
    mempipe *a, *b;
    if (uv_loop_init(&loop) != 0 || mempipe_duplex(64, &a, &b) != 0)
        return 1;
    w.data = b;
    if (mempipe_uv_watch_init(&loop, &w, b) != 0 ||
        mempipe_uv_watch_start(&w, MEMPIPE_UV_READABLE, on_ready) != 0)
        return 1;
    mempipe_write(a, "over libuv", 10);
    uv_run(&loop, UV_RUN_DEFAULT); /* until the watch is closed */
    mempipe_close(a);
    mempipe_close(b);
    int ok = uv_loop_close(&loop) == 0 && strcmp(got, "over libuv") == 0;
    printf("mempipe-uv with libuv %s: %s\n", uv_version_string(),
           ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
