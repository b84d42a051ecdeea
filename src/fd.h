/* SPDX-License-Identifier: MIT */
/*
 * fd: the pollable-file-descriptor front-end (mempipe_readable_fd,
 * mempipe_writable_fd, mempipe_fd). Each pipe may carry one `watch` with up
 * to four watchers: the readable fd of the end that reads it, the writable
 * fd of the end that writes it, and one part each of those two ends'
 * mempipe_fd sockets (sockfd.h). The watch is the pipe's observer (pipe.h): the
 * pipe calls its notify after every progress point once it exists
 * (mempipe__pipe_progress in pipe.c), and its release when freed; an
 * unwatched pipe never reaches this file on its data path, and the pipe
 * never includes this header.
 */
#ifndef MEMPIPE_FD_H
#define MEMPIPE_FD_H

struct mempipe;
struct mempipe__pipe;
struct mempipe__fdwatch;

/*
 * mempipe_close(), first thing: closes the fds this end asked for (its
 * readable fd on end->rx, its writable fd on end->tx, its mempipe_fd
 * socket, whose parts are on both). No syscall for an end that never
 * asked.
 */
void mempipe__fd_close_end(struct mempipe *end);

/*
 * The fork generation of this process: 0 in the first, one more in each
 * child of a fork() (a pthread_atfork handler, registered on the first
 * call). Pipes and watches record it when made; one from another generation
 * was inherited, and may only be released (SPEC R34). Any thread.
 */
unsigned mempipe__fork_gen(void);

#endif
