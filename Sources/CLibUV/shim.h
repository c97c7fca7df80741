#ifndef SWARM_CLIBUV_SHIM_H
#define SWARM_CLIBUV_SHIM_H
#include <uv.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

// Casts that Swift cannot spell directly on uv's C "inheritance" of handles.
static inline uv_handle_t *swarm_handle(void *h) { return (uv_handle_t *)h; }
static inline uv_stream_t *swarm_stream(void *h) { return (uv_stream_t *)h; }

// Process stdio containers: Swift cannot easily set the anonymous union.
static inline void swarm_stdio_ignore(uv_stdio_container_t *c) { c->flags = UV_IGNORE; }
static inline void swarm_stdio_pipe(uv_stdio_container_t *c, uv_pipe_t *pipe, int writable_by_child) {
    c->flags = (uv_stdio_flags)(UV_CREATE_PIPE | (writable_by_child ? UV_WRITABLE_PIPE : UV_READABLE_PIPE));
    c->data.stream = (uv_stream_t *)pipe;
}
static inline void swarm_stdio_fd(uv_stdio_container_t *c, int fd) {
    c->flags = UV_INHERIT_FD;
    c->data.fd = fd;
}

// Become a child subreaper so a task's orphaned grandchildren are re-parented to us (not PID 1).
static inline int swarm_set_child_subreaper(void) { return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); }
// Names the calling thread (visible in ps, top and crash reports); 15 characters at most.
static inline int swarm_set_thread_name(const char *name) { return prctl(PR_SET_NAME, name, 0, 0, 0); }
#endif
