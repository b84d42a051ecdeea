/* SPDX-License-Identifier: MIT */
/* A first end-to-end look: one duplex, both directions, EOF and EPIPE. */
#include "testutil.h"

#include <errno.h>
#include <string.h>

static void test_duplex_roundtrip(void **state)
{
    (void)state;
    mempipe *a = NULL, *b = NULL;
    char buf[16];
    assert_rc(0, mempipe_duplex(8, &a, &b));
    assert_rc(5, mempipe_poll_write(a, "hello", 5, NULL));
    assert_rc(3, mempipe_poll_write(a, "world", 5, NULL));
    assert_rc(-EAGAIN, mempipe_poll_write(a, "x", 1, NULL));
    assert_rc(8, mempipe_poll_read(b, buf, sizeof buf, NULL));
    assert_memory_equal(buf, "hellowor", 8);
    assert_rc(-EAGAIN, mempipe_poll_read(b, buf, sizeof buf, NULL));
    assert_rc(2, mempipe_poll_write(b, "hi", 2, NULL));
    assert_rc(0, mempipe_shutdown(a));
    assert_rc(0, mempipe_poll_read(b, buf, sizeof buf, NULL));
    assert_rc(-EPIPE, mempipe_poll_write(a, "x", 1, NULL));
    assert_rc(2, mempipe_read(a, buf, sizeof buf));
    mempipe_close(b);
    assert_rc(0, mempipe_read(a, buf, sizeof buf));
    mempipe_close(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duplex_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
