#ifndef SWARM_CHTTPPARSER_SHIM_H
#define SWARM_CHTTPPARSER_SHIM_H
#include <http_parser.h>

// http_parser keeps these in bit-fields: plain accessors, so Swift never depends on how its
// importer lays bit-fields out.
static inline unsigned swarm_http_method(const http_parser *p) { return p->method; }
static inline unsigned swarm_http_errno(const http_parser *p) { return p->http_errno; }
static inline unsigned swarm_http_status(const http_parser *p) { return p->status_code; }
static inline unsigned swarm_http_upgrade(const http_parser *p) { return p->upgrade; }
static inline unsigned swarm_http_flags(const http_parser *p) { return p->flags; }
static inline int swarm_http_chunked(const http_parser *p) { return (p->flags & F_CHUNKED) != 0; }
static inline int swarm_http_has_content_length(const http_parser *p) {
    return p->content_length != 0 && p->content_length != (uint64_t)-1;
}
#endif
