#ifndef SWARM_CSQLITE_SHIM_H
#define SWARM_CSQLITE_SHIM_H
#include <sqlite3.h>

// SQLITE_TRANSIENT is a cast macro Swift cannot import: sqlite copies the bound bytes.
static inline sqlite3_destructor_type swarm_sqlite_transient(void) { return SQLITE_TRANSIENT; }

// A WAL hook that stores the WAL's frame count after each commit in *frames (an int the
// caller owns) and checkpoints nothing: it replaces SQLite's automatic checkpoint.
static inline int swarm_sqlite_wal_count(void *frames, sqlite3 *db, const char *name, int count) {
    (void)db; (void)name;
    *(int *)frames = count;
    return SQLITE_OK;
}
static inline void swarm_sqlite_count_wal(sqlite3 *db, int *frames) {
    sqlite3_wal_hook(db, swarm_sqlite_wal_count, frames);
}
#endif
