#!/usr/bin/env bash
# Installs what a fresh Debian 12 + Swift 6.3 machine lacks to build swarm: libuv1-dev,
# libsqlite3-dev (and pkg-config, which SwiftPM uses to find them) and libhttp-parser-dev
# (the servers' HTTP/1.1 parser; it has no pkg-config file, so its header is looked for), libssl-dev (TLS),
# plus the sqlite3 tool for looking into the scheduler's state, git (`--repo` tasks), and for the tests
# faketime, prometheus (promtool), curl and iproute2 (multi-host tests),
# and with SWARM_BROWSER_TESTS=1 chromium (the dashboard's browser test). Safe to run again: it installs nothing
# when everything is there.
set -euo pipefail

if ! command -v swift >/dev/null 2>&1; then
    echo "swarm: swift is not on PATH (Swift 6.x toolchain required)" >&2
    exit 1
fi

missing=()
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
if ! pkg-config --exists libuv 2>/dev/null; then missing+=(libuv1-dev); fi
if ! pkg-config --exists sqlite3 2>/dev/null; then missing+=(libsqlite3-dev); fi
[ -e /usr/include/http_parser.h ] || missing+=(libhttp-parser-dev)
# TLS 1.3 on every connection but loopback without a token (issue 16), and `swarm tls init`.
if ! pkg-config --exists openssl 2>/dev/null; then missing+=(libssl-dev); fi
# Optional, for users: `sqlite3 STATE_DIR/swarm.db` shows the scheduler's state.
command -v sqlite3 >/dev/null 2>&1 || missing+=(sqlite3)
# Workers run git for `--repo` tasks (mirrors, worktrees, bundles), and `swarm fetch --git`
# on the client; the tests use it too.
command -v git >/dev/null 2>&1 || missing+=(git)
# The tests step the wall clock of a scheduler and a worker under libfaketime
# (WallClockStepTests): durations must not move with it.
[ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ] || missing+=(faketime)
# The metrics test checks a /metrics scrape with promtool (Debian's prometheus package); it
# skips, saying why, without it.
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
# The metrics, dashboard and HTTPS tests talk to the servers with a real HTTP client, curl
# (not in a minimal Debian 12 image; without it those tests skip, saying why).
command -v curl >/dev/null 2>&1 || missing+=(curl)
# The multi-host tests make hosts as network namespaces with ip(8) (they skip, saying why, without it).
[ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || [ -x /usr/bin/ip ] || [ -x /bin/ip ] || missing+=(iproute2)
# The dashboard's browser test drives a headless Chromium (Debian's chromium, ~300 MB with its
# libraries): installed only for that tier, with SWARM_BROWSER_TESTS=1; without it the test
# skips, saying why.
if [ "${SWARM_BROWSER_TESTS:-0}" = "1" ] && ! [ -x /usr/bin/chromium ]; then missing+=(chromium); fi

if [ ${#missing[@]} -gt 0 ]; then
    echo "swarm: installing ${missing[*]} ..." >&2
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    # A fresh machine often runs apt's daily timer (unattended-upgrades) at boot: wait for its
    # locks (up to 10 min) instead of failing at once with "Could not get lock". The option
    # covers dpkg's lock; `update`'s lists lock is not waited for, so update is retried.
    APT=(apt-get -o DPkg::Lock::Timeout=600)
    for attempt in $(seq 1 60); do
        if $SUDO "${APT[@]}" update -qq; then break; fi
        [ "$attempt" -lt 60 ] || { echo "swarm: apt-get update kept failing for 10 min" >&2; exit 1; }
        echo "swarm: apt-get update failed (another apt holding its lock?); again in 10 s" >&2
        sleep 10
    done
    $SUDO "${APT[@]}" install -y -qq "${missing[@]}" >/dev/null
fi
pkg-config --exists libuv || { echo "swarm: libuv still not found by pkg-config" >&2; exit 1; }
pkg-config --exists sqlite3 || { echo "swarm: sqlite3 still not found by pkg-config" >&2; exit 1; }
pkg-config --exists openssl || { echo "swarm: openssl still not found by pkg-config (libssl-dev)" >&2; exit 1; }
[ -e /usr/include/http_parser.h ] || { echo "swarm: http_parser.h still not found (libhttp-parser-dev)" >&2; exit 1; }
