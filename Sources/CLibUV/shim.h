#ifndef SWARM_CLIBUV_SHIM_H
#define SWARM_CLIBUV_SHIM_H
#include <uv.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

// Casts that Swift cannot spell directly on uv's C "inheritance" of handles.
static inline uv_handle_t *swarm_handle(void *h) { return (uv_handle_t *)h; }
static inline uv_stream_t *swarm_stream(void *h) { return (uv_stream_t *)h; }

// posix_spawn extensions of glibc (declared only under _GNU_SOURCE / __USE_MISC).
#ifndef POSIX_SPAWN_SETSID
#define POSIX_SPAWN_SETSID 0x80
#endif
extern int posix_spawn_file_actions_addchdir_np(posix_spawn_file_actions_t *__restrict actions,
                                                const char *__restrict path);
extern char **environ;
extern int pipe2(int pipefd[2], int flags);

// A pipe whose both ends are close-on-exec (no concurrent spawn on another thread inherits
// them). Returns 0 or -errno.
static inline int swarm_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC) == 0 ? 0 : -errno; }

// Spawns `path` with posix_spawn (glibc: clone(CLONE_VM|CLONE_VFORK), so the cost does not
// grow with our address space, unlike fork). `fds[i]` >= 0 becomes the child's descriptor i
// (dup2), -1 gives it /dev/null. The child gets an empty signal mask and default dispositions
// for every signal; `new_session`: setsid() (it leads its own session and process group).
// `envp` NULL: our environment. Errors of the child's chdir or exec are returned here
// (glibc reports them and reaps the failed child). Returns 0 or an errno value.
static inline int swarm_spawn(pid_t *pid, const char *path, char *const argv[], char *const envp[],
                              const char *cwd, const int fds[3], int new_session) {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    int source[3] = { fds[0], fds[1], fds[2] };
    int temp[3] = { -1, -1, -1 };
    int rc = 0;
    // dup2 actions run in order: a source that is itself one of 0..2 (and not its own
    // target) could be overwritten by an earlier action, so move it out of the way first.
    for (int i = 0; i < 3; i++) {
        if (source[i] >= 0 && source[i] < 3 && source[i] != i) {
            temp[i] = fcntl(source[i], F_DUPFD_CLOEXEC, 3);
            if (temp[i] < 0) { rc = errno; goto out_fds; }
            source[i] = temp[i];
        }
    }
    if ((rc = posix_spawn_file_actions_init(&actions)) != 0) goto out_fds;
    if ((rc = posix_spawnattr_init(&attr)) != 0) goto out_actions;
    sigset_t mask, defaults;
    sigemptyset(&mask);
    sigfillset(&defaults);
    sigdelset(&defaults, SIGKILL);
    sigdelset(&defaults, SIGSTOP);
    // glibc's sigfillset leaves out its internal signals 32 and 33, and its spawn then sets
    // them to SIG_IGN in the child, which exec keeps (fork + exec would leave them default).
    // Put them in the set by hand (the kernel's bit layout) so the child gets SIG_DFL.
    for (int sig = 32; sig <= 33; sig++) {
        unsigned long *words = (unsigned long *)&defaults;
        words[(sig - 1) / (8 * sizeof(unsigned long))] |= 1UL << ((sig - 1) % (8 * sizeof(unsigned long)));
    }
    short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | (new_session ? POSIX_SPAWN_SETSID : 0);
    if ((rc = posix_spawnattr_setflags(&attr, flags)) != 0) goto out_attr;
    if ((rc = posix_spawnattr_setsigmask(&attr, &mask)) != 0) goto out_attr;
    if ((rc = posix_spawnattr_setsigdefault(&attr, &defaults)) != 0) goto out_attr;
    for (int i = 0; i < 3; i++) {
        rc = source[i] >= 0
            ? posix_spawn_file_actions_adddup2(&actions, source[i], i)
            : posix_spawn_file_actions_addopen(&actions, i, "/dev/null", i == 0 ? O_RDONLY : O_RDWR, 0);
        if (rc != 0) goto out_attr;
    }
    if (cwd && (rc = posix_spawn_file_actions_addchdir_np(&actions, cwd)) != 0) goto out_attr;
    rc = posix_spawn(pid, path, &actions, &attr, argv, envp ? envp : environ);
out_attr:
    posix_spawnattr_destroy(&attr);
out_actions:
    posix_spawn_file_actions_destroy(&actions);
out_fds:
    for (int i = 0; i < 3; i++) if (temp[i] >= 0) close(temp[i]);
    return rc;
}

// pidfd_open(2) (Linux 5.3; glibc 2.36's wrapper may be hidden): a descriptor that becomes
// readable when the process exits. Returns the descriptor or -errno.
static inline int swarm_pidfd_open(pid_t pid) {
    long fd = syscall(434 /* SYS_pidfd_open */, pid, 0);
    return fd < 0 ? -errno : (int)fd;
}

// Reaps the process of `pidfd` without blocking: waitid(P_PIDFD, WEXITED|WNOHANG).
// Returns 1 with `status` (exit status, or 0) and `signal` (terminating signal, or 0) set,
// 0 when it has not exited yet, or -errno.
static inline int swarm_pidfd_reap(int pidfd, long long *status, int *signal) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    if (waitid((idtype_t)3 /* P_PIDFD */, (id_t)pidfd, &info, WEXITED | WNOHANG) != 0) return -errno;
    if (info.si_pid == 0) return 0;
    if (info.si_code == CLD_EXITED) { *status = info.si_status; *signal = 0; }
    else { *status = 0; *signal = info.si_status; }
    return 1;
}

// A private epoll set for pidfds (`PidfdWatch`): one `epoll_ctl` per child to watch it and
// one to stop, where a `uv_poll_t` per child cost six (libuv checks, invalidates and
// re-registers the descriptor around its init, start, stop and close). Level-triggered;
// `token` comes back from `swarm_epoll_ready`. Each returns 0 / a count, or -errno.
#include <sys/epoll.h>
static inline int swarm_epoll_create(void) { int fd = epoll_create1(EPOLL_CLOEXEC); return fd < 0 ? -errno : fd; }
static inline int swarm_epoll_add(int epfd, int fd, unsigned long long token) {
    struct epoll_event event;
    memset(&event, 0, sizeof event);
    event.events = EPOLLIN;
    event.data.u64 = token;
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &event) == 0 ? 0 : -errno;
}
static inline int swarm_epoll_del(int epfd, int fd) {
    struct epoll_event event;
    memset(&event, 0, sizeof event);
    return epoll_ctl(epfd, EPOLL_CTL_DEL, fd, &event) == 0 ? 0 : -errno;
}
// The tokens of up to `max` (at most 64) ready descriptors, without waiting.
static inline int swarm_epoll_ready(int epfd, unsigned long long *tokens, int max) {
    struct epoll_event events[64];
    if (max > 64) max = 64;
    int n;
    do { n = epoll_wait(epfd, events, max, 0); } while (n < 0 && errno == EINTR);
    if (n < 0) return -errno;
    for (int i = 0; i < n; i++) tokens[i] = events[i].data.u64;
    return n;
}

// Become a child subreaper so a task's orphaned grandchildren are re-parented to us (not PID 1).
static inline int swarm_set_child_subreaper(void) { return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); }
// Names the calling thread (visible in ps, top and crash reports); 15 characters at most.
static inline int swarm_set_thread_name(const char *name) { return prctl(PR_SET_NAME, name, 0, 0, 0); }
#endif
