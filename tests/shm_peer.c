/* SPDX-License-Identifier: MIT */
/*
 * shm_peer FD CTL: the peer process of shm_test's exec case (SPEC R76: an
 * fd inherited across exec attaches). FD is the shm pipe's descriptor,
 * inherited without FD_CLOEXEC; CTL the control socket. It attaches FD and
 * serves the commands of shm_peer.h until CTL reads EOF.
 */
#include "shm_peer.h"

#include <stdio.h>
#include <stdlib.h>

static int number(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    return *s != '\0' && *end == '\0' && v >= 0 && v < 65536 ? (int)v : -1;
}

int main(int argc, char **argv)
{
    int fd = argc == 3 ? number(argv[1]) : -1;
    int ctl = argc == 3 ? number(argv[2]) : -1;
    if (fd < 0 || ctl < 0) {
        fprintf(stderr, "usage: shm_peer FD CTL\n");
        return 64;
    }
    return sp_attach_serve(fd, ctl);
}
