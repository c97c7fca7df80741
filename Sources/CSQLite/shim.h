#ifndef SWARM_CSQLITE_SHIM_H
#define SWARM_CSQLITE_SHIM_H
#include <sqlite3.h>

// SQLITE_TRANSIENT is a cast macro Swift cannot import: sqlite copies the bound bytes.
static inline sqlite3_destructor_type swarm_sqlite_transient(void) { return SQLITE_TRANSIENT; }
#endif
