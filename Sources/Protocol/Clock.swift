#if canImport(Glibc)
import Glibc
#endif

/// Wall-clock unix milliseconds. Logic never reads the clock itself: it is given `now`, and
/// shells pass this (tests pass their own).
public func unixMillis() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}

/// Wall-clock unix microseconds, for latency measurements finer than a millisecond.
public func unixMicros() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1_000
}
