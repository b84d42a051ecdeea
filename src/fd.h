/* SPDX-License-Identifier: MIT */
/*
 * fd: the pollable-file-descriptor front-end (mempipe_readable_fd,
 * mempipe_writable_fd). Each pipe may carry one `watch` with up to two
 * watchers: the readable fd of the end that reads it and the writable fd of
 * the end that writes it. The pipe calls mempipe__fd_notify() after every
 * progress point once a watch exists (mempipe__pipe_progress in pipe.c);
 * an unwatched pipe never reaches this file on its data path.
 *
 * This header only declares: pipe.h includes it for the hook, so it must not
 * include pipe.h back.
 */
#ifndef MEMPIPE_FD_H
#define MEMPIPE_FD_H

struct mempipe;
struct mempipe__pipe;
struct mempipe__fdwatch;

/*
 * Any thread, after a state change of p (bytes in or out, a close flag) and
 * the full fence that follows it, and only when p->watch is set. Brings each
 * watcher's fd in step with the pipe's state; no syscall and no lock when
 * the signalled state is already right.
 */
void mempipe__fd_notify(struct mempipe__pipe *p);

/*
 * mempipe_close(), first thing: closes the fds this end asked for (its
 * readable fd on end->rx, its writable fd on end->tx). No syscall for an end
 * that never asked.
 */
void mempipe__fd_close_end(struct mempipe *end);

/* pipe free (last close): frees p's watch, if any. No other thread left. */
void mempipe__fd_free(struct mempipe__pipe *p);

/*
 * The fork generation of this process: 0 in the first, one more in each
 * child of a fork() (a pthread_atfork handler, registered on the first
 * call). Pipes and watches record it when made; one from another generation
 * was inherited, and may only be released (SPEC R34). Any thread.
 */
unsigned mempipe__fork_gen(void);

#endif
