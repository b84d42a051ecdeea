#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Writes the seed corpus of fuzz/shm_fuzz.c into fuzz/shm-corpus/ (run it
# again after a change of the input layout; the files are checked in).
# Each seed is hex bytes: the mode byte (bit 0 simplex, bits 1-3 the
# capacity's index in caps[] = {1, 2, 5, 8, 13, 64, 4095, 4097}, bit 4 no
# liveness lock), then operations (opcode % 16, see run_op), then the two
# bytes of the final close (how, error). Comments after '#'.
set -euo pipefail
cd "$(dirname "$0")"
out=shm-corpus
rm -rf "$out"
mkdir -p "$out"

seed() { # seed NAME HEX...
    local name=$1 hex
    shift
    hex=$(printf '%s' "$*" | sed 's/#[^|]*|//g' | tr -cd '0-9a-fA-F')
    printf "$(printf '%s' "$hex" | sed 's/../\\x&/g')" >"$out/$name"
}

# Honest traffic both ways on a duplex of capacity 8: reads, a short write
# leaving its waker (the notifier starts), peek/consume, reserve/commit,
# drain, describe, our shutdown, the peer's close with EIO after 1 byte.
seed duplex-traffic 06 \
    0b 05 11        '#peer writes 5|' \
    00 00 08 00 00  '#poll_read 8: 5|' \
    02 00 0a 00 22  '#poll_write 10: 8|' \
    0c 04 00        '#peer reads 4|' \
    02 00 06 01 33  '#poll_write 6, waker: 4|' \
    0c 08 00        '#peer reads 8|' \
    0b 03 44        '#peer writes 3|' \
    04 00           '#peek: 3|' \
    05 00 02 00     '#consume 2|' \
    06 05 00 55     '#reserve 5|' \
    07 00 03        '#commit 3|' \
    0a 00 00        '#poll_readable|' \
    0a 04 00        '#drain 0|' \
    09 00 28        '#describe|' \
    08 00           '#shutdown|' \
    0d 02 01        '#peer close_with_error EIO|' \
    00 00 08 00 00  '#read: 1|' \
    00 00 08 00 00  '#read: -EIO|' \
    00 00

# The peer aborts: our read gets -ECONNRESET, our write its WERR.
seed duplex-peer-abort 06 0b 06 01 0d 03 00 00 00 08 00 00 02 00 04 00 00 \
    02 00

# Protocol errors: a wpos past our rpos + cap; an rpos past what we wrote;
# an unknown state bit; a wend past rpos + cap; a wend below wpos.
seed proto-wpos 06 0e 02 03 01 00 00 08 00 00 02 00 04 00 00 09 00 40 01 00
seed proto-rpos 06 02 00 04 00 00 0e 03 02 05 02 00 04 00 00 0a 02 00 00 00
seed proto-state 06 0e 00 40 00 00 00 00 00 04 00 00 02 00 04 00 00 00 00
seed proto-wend-far 06 0b 04 aa 0e 01 03 05 0e 00 01 00 00 00 00 08 00 00 00 00
seed proto-wend-low 06 0b 04 aa 0e 01 00 00 0e 00 01 00 00 00 00 08 00 00 00 00

# A wend ahead of wpos but within the ring: the reader takes up to it.
seed wend-ahead 06 0b 02 bb 0e 01 01 03 0e 00 01 00 00 \
    00 00 08 00 00 00 00 08 00 00 00 00

# A simplex writer: the peer reads, rings our bell, shuts its reading side.
seed simplex-writer 05 \
    02 00 05 00 11  '#poll_write 5|' \
    0c 03 00        '#peer reads 3|' \
    02 00 05 02 22  '#poll_write 5, re-entering waker|' \
    0e 07 01        '#our bell|' \
    0d 01 00        '#peer shutdown_read|' \
    02 00 03 00 00  '#write: -EPIPE|' \
    0a 04 00        '#drain|' \
    00 00 04 00 00  '#read: -EBADF|' \
    01 00

# Wakers, fds and the notifier: a readable fd, a stored read waker, the
# peer's write and bell, mempipe_fd, the peer's close.
seed notifier-fds 06 09 02 00 00 00 04 01 00 0b 02 cc 0e 07 01 \
    00 00 04 02 00 09 03 0d 02 00 00 00 04 00 00 00 00

# The largest capacity: 4096-byte writes and reads around the wrap, a peek
# and a reservation across it.
seed wrap-4097 0e \
    0b c8 00 10 5a        '#peer writes 4096|' \
    00 00 c8 00 10 00 00  '#read 4096|' \
    0b c8 00 10 5b        '#peer writes 4096 across the wrap|' \
    04 00                 '#peek: 2 spans|' \
    05 01 c8 00 10 00     '#consume_examined 4096|' \
    02 00 c8 ff 0f 00 77  '#write 4095|' \
    0c c8 00 10 00        '#peer reads 4096|' \
    06 c8 00 10 00 66     '#reserve 4096: 2 spans|' \
    07 01 c8 00 10        '#commit|' \
    00 00

# Scribbles: the immutable header (never read again), a punched hole, the
# attach word, the peer's death (its lock closed), our own words.
seed scribble-header 06 \
    0e 04 10 00 00 00                     '#header word 0x10 = 0|' \
    0e 04 20 00 07 00 ff ff ff ff ff ff ff ff '#off[0] = ~0|' \
    0b 04 01 00 00 08 00 00 \
    0e 06 02 00 00 00                     '#punch ring 0 page 0|' \
    02 00 04 00 00 \
    0e 05 00                              '#attach = 0|' \
    09 00 40 \
    0e 08                                 '#the peer dies|' \
    0a 00 01 \
    0e 04 00 03 01 05                     '#our wpos word|' \
    02 00 04 00 00 00 00

# Marks and readiness: a read mark of 4, the writer's of 5, waits with 0.
seed marks-ready 06 19 00 04 0a 00 01 0b 02 dd 0a 00 01 0b 02 dd 0a 01 00 \
    19 01 05 02 00 08 00 00 0a 02 01 0c 06 00 0a 03 00 \
    19 02 ff ff ff ff ff ff ff ff 00 00

# Our read-side shutdown while the honest peer keeps writing; rst_on_unread.
seed shutdown-read 06 0b 03 01 08 01 00 00 04 00 00 0b 03 02 00 00 04 00 00 \
    09 01 01 00 00

# The peer waits (want, targets, cpu): our writes and reads ring its bell.
seed peer-waits 06 1d 0f 02 00 02 00 05 02 00 04 00 00 0b 02 01 \
    00 00 04 00 00 0c 04 00 02 00 04 00 00 01 01

# Hostile positions from the honest peer's own: wpos back, rpos back.
seed positions-back 06 0b 05 01 00 00 02 00 00 0e 02 01 fe 00 00 08 00 00 \
    02 00 08 00 00 0c 03 00 0e 03 01 fd 02 00 08 00 00 02 00

# Capacity 1, no lock (the peer is dead to a check): every call on a tiny
# ring.
seed cap1-nolock 10 0b 01 01 00 00 01 00 00 02 00 01 00 00 0c 01 00 \
    04 00 05 00 01 00 06 01 00 00 07 00 01 0d 00 00 00 00 01 00 00 02 00

ls "$out" | wc -l | sed 's/$/ seeds/'
