/* SPDX-License-Identifier: MIT */
/*
 * A program built against an installed mempipe, the way a user's project
 * would: through pkg-config (Makefile) or find_package (CMakeLists.txt).
 * It checks the header and the library agree and moves a few bytes.
 */
#include <mempipe.h>

#include <stdio.h>
#include <string.h>

int main(void)
{
    char expect[32];
    snprintf(expect, sizeof expect, "%d.%d.%d", MEMPIPE_VERSION_MAJOR,
             MEMPIPE_VERSION_MINOR, MEMPIPE_VERSION_PATCH);
    if (strcmp(expect, mempipe_version()) != 0 ||
        mempipe_version_number() != MEMPIPE_VERSION_HEX) {
        fprintf(stderr, "header %s, library %s (%#x)\n", expect,
                mempipe_version(), mempipe_version_number());
        return 1;
    }
    mempipe *a, *b;
    char buf[16] = {0};
    if (mempipe_duplex(64, &a, &b) != 0)
        return 1;
    ssize_t w = mempipe_write(a, "installed", 9);
    mempipe_close(a);
    ssize_t r = mempipe_read(b, buf, sizeof buf - 1);
    ssize_t eof = mempipe_read(b, buf + 9, 1);
    mempipe_close(b);
    if (w != 9 || r != 9 || eof != 0 || strcmp(buf, "installed") != 0) {
        fprintf(stderr, "unexpected: w=%zd r=%zd eof=%zd buf=%s\n", w, r, eof,
                buf);
        return 1;
    }
    printf("mempipe %s: ok\n", mempipe_version());
    return 0;
}
