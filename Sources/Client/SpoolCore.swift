import SwarmProtocol

/// A request file's size and modification time (nanoseconds since the epoch): what must stay
/// the same for `SpoolLimits.quietMs` before the file is taken.
public struct FileStamp: Equatable, Hashable, Sendable {
    public var size: Int64
    public var mtimeNs: Int64
    public init(size: Int64, mtimeNs: Int64) { self.size = size; self.mtimeNs = mtimeNs }
}

/// The numbers the spool enforces (README, "Coming from the file-based coordinator").
public struct SpoolLimits: Equatable, Sendable {
    /// A file is taken once two looks at least this far apart (monotonic ms) saw the same
    /// stamp, with no different stamp seen between them.
    public var quietMs: Int64 = 500
    /// Request names followed at once in `requests/` (more wait for a later rescan).
    public var maxTracked = 10_000
    /// Files claimed per tick, event or rescan.
    public var maxClaimsPerTick = 1_000
    /// Requests claimed and not finished (each holds one open wait at the scheduler, whose
    /// per-connection limit is 1,000).
    public var maxInFlight = 500
    /// How long the disappearance of `NAME.tmp` marks `NAME` as renamed from it (ms).
    public var renameMemoryMs: Int64 = 2_000
    public init() {}
}

/// What the shell saw or got, fed to `SpoolCore.handle`.
public enum SpoolEvent: Equatable, Sendable {
    /// One name in `requests/` looked at (nil: it is not there, or not a regular file).
    case observed(String, FileStamp?)
    /// A listing of `requests/`; `complete`: every entry is in it (names missing are gone).
    case scanned([String: FileStamp], complete: Bool)
    /// Files found in `processing/` at start (an earlier spool's claims).
    case recovering([String])
    /// A `claim` was not done (the file changed or went; `stamp` is what is there now).
    case claimAbandoned(String, FileStamp?)
    /// A claimed or recovered file of `processing/` read and parsed.
    case read(String, SpoolReadOutcome, recovered: Bool)
    case connected
    case disconnected
    case submitted(String)
    /// `code` nil: the request never got an answer (connection lost).
    case submitFailed(String, ErrorCode?, String)
    case ended(String, TaskInfo)
    case waitFailed(String, ErrorCode?, String)
    case completed(String)
    case completeFailed(String)
    /// Periodic: retries and claims that came due.
    case tick
}

/// A claimed file's content as the shell found it.
public enum SpoolReadOutcome: Equatable, Sendable {
    /// A valid request; `resultExists`: `results/{id}.json` is already there.
    case request(SpoolRequest, resultExists: Bool)
    case rejected(SpoolRejection)
}

/// What the shell must do; names are file names (in `requests/` for `claim`, else in
/// `processing/`).
public enum SpoolDirective: Equatable, Sendable {
    /// Rename `requests/NAME` into `processing/` if its stamp is still `stamp`, read it, and
    /// report `read` (or `claimAbandoned`).
    case claim(String, stamp: FileStamp)
    /// Read `processing/NAME` (recovery) and report `read`.
    case read(String)
    /// Move `processing/NAME` to `rejected/` with `NAME.error` saying `reason`.
    case reject(String, reason: String)
    case submit(String, TaskSpec)
    case wait(String, id: String)
    /// Write `results/{id}.json` (never over an existing one), then move the file to `done/`;
    /// report `completed` or `completeFailed`.
    case complete(String, id: String, result: [UInt8])
    /// The result is there already (written before a restart): move the file to `done/`.
    case finishExisting(String)
}

/// The spool's decisions, pure: events with a monotonic `now` (ms) in, directives out.
public struct SpoolCore: Sendable {
    struct Candidate: Equatable, Sendable {
        var stamp: FileStamp
        var since: Int64
        /// Renamed from `NAME.tmp`: complete as it appeared, taken at once.
        var renamed: Bool
    }

    enum Phase: Equatable, Sendable { case toSubmit, submitting, waiting, completing([UInt8]) }

    struct Entry: Equatable, Sendable {
        var request: SpoolRequest
        var phase: Phase
    }

    public let limits: SpoolLimits
    private(set) var candidates: [String: Candidate] = [:]
    private(set) var tmpSeen: Set<String> = []
    private(set) var renamedAt: [String: Int64] = [:]
    private(set) var entries: [String: Entry] = [:]
    private(set) var recovery: [String] = []
    /// Claims and reads emitted and not yet reported back.
    private(set) var reserved = 0
    private(set) var connected = false

    public init(limits: SpoolLimits = SpoolLimits()) { self.limits = limits }

    /// Requests claimed and not finished.
    public var inFlight: Int { entries.count }

    public mutating func handle(_ event: SpoolEvent, now: Int64) -> [SpoolDirective] {
        var out: [SpoolDirective] = []
        switch event {
        case let .observed(name, stamp):
            // A new or changed file is due only after the quiet period (the shell's timer
            // ticks then): only a rename from .tmp can make one due now. So a burst of
            // events costs O(1) each, not a look at every candidate.
            if !observe(name, stamp, now: now) { return [] }
        case let .scanned(listing, complete): scan(listing, complete: complete, now: now)
        case .recovering(let names): recovery += names.filter { entries[$0] == nil }
        case let .claimAbandoned(name, stamp):
            reserved = max(0, reserved - 1)
            observe(name, stamp, now: now)
        case let .read(name, outcome, recovered: recovered):
            reserved = max(0, reserved - 1)
            out += read(name, outcome, recovered: recovered)
        case .connected:
            connected = true
            out += resubmitAll()
        case .disconnected:
            connected = false
            for (name, entry) in entries where entry.phase == .submitting || entry.phase == .waiting {
                entries[name]?.phase = .toSubmit
            }
        case .submitted(let name):
            guard let entry = entries[name], entry.phase == .submitting else { break }
            entries[name]?.phase = .waiting
            out.append(.wait(name, id: entry.request.id))
        case let .submitFailed(name, code, reason):
            out += submitFailed(name, code, reason)
        case let .ended(name, info):
            guard let entry = entries[name], entry.phase == .waiting else { break }
            let bytes = SpoolResult.bytes(for: info, contextChars: entry.request.contextChars)
            entries[name]?.phase = .completing(bytes)
            out.append(.complete(name, id: entry.request.id, result: bytes))
        case .waitFailed(let name, _, _):
            // Submitted again at the next tick (idempotent): also right when the scheduler
            // lost the task (a new state directory).
            if entries[name]?.phase == .waiting { entries[name]?.phase = .toSubmit }
        case .completed(let name):
            entries[name] = nil
        case .completeFailed:
            break  // retried at the next tick
        case .tick:
            out += retries(now: now)
        }
        out += claims(now: now)
        return out
    }

    /// When the next claim comes due (monotonic ms), nil when none can: the shell's timer.
    public func nextDue(now: Int64) -> Int64? {
        guard room > 0 else { return nil }
        var due: Int64?
        for candidate in candidates.values {
            let at = candidate.renamed ? now : candidate.since + limits.quietMs
            due = min(due ?? at, at)
        }
        if !recovery.isEmpty { due = now }
        return due
    }

    private var room: Int { max(0, limits.maxInFlight - entries.count - reserved) }

    // MARK: Watching requests/

    /// Returns whether a candidate became due at once (renamed from its .tmp).
    @discardableResult
    private mutating func observe(_ name: String, _ stamp: FileStamp?, now: Int64) -> Bool {
        if name.hasPrefix(".") || name.isEmpty { return false }
        if name.hasSuffix(".tmp") {
            if stamp != nil {
                if tmpSeen.count < limits.maxTracked { tmpSeen.insert(name) }
            } else if tmpSeen.remove(name) != nil {
                return tmpGone(String(name.dropLast(4)), now: now)
            }
            return false
        }
        guard let stamp else { candidates[name] = nil; return false }
        if let known = candidates[name], known.stamp == stamp { return false }
        if candidates[name] == nil && candidates.count >= limits.maxTracked { return false }
        // Renamed from its .tmp: the .tmp is gone and was seen to go within the memory.
        let renamed = !tmpSeen.contains(name + ".tmp")
            && (renamedAt.removeValue(forKey: name).map { now - $0 <= limits.renameMemoryMs } ?? false)
        candidates[name] = Candidate(stamp: stamp, since: now, renamed: renamed)
        return renamed
    }

    /// `final + ".tmp"` disappeared: a writer renamed it to `final` (taken at once).
    private mutating func tmpGone(_ final: String, now: Int64) -> Bool {
        if candidates[final] != nil {
            candidates[final]?.renamed = true
            return true
        }
        if renamedAt.count < limits.maxTracked { renamedAt[final] = now }
        return false
    }

    private mutating func scan(_ listing: [String: FileStamp], complete: Bool, now: Int64) {
        // Finals before their .tmp's disappearance is noticed, so a rename seen only by the
        // scan still counts as one.
        for (name, stamp) in listing where !name.hasSuffix(".tmp") { observe(name, stamp, now: now) }
        for (name, stamp) in listing where name.hasSuffix(".tmp") { observe(name, stamp, now: now) }
        guard complete else { return }
        for name in tmpSeen where listing[name] == nil { observe(name, nil, now: now) }
        for name in candidates.keys where listing[name] == nil { candidates[name] = nil }
    }

    private mutating func claims(now: Int64) -> [SpoolDirective] {
        var out: [SpoolDirective] = []
        while room > 0, !recovery.isEmpty {
            out.append(.read(recovery.removeFirst()))
            reserved += 1
        }
        guard room > 0, !candidates.isEmpty else { return out }
        let due = candidates.filter { $0.value.renamed || now - $0.value.since >= limits.quietMs }
        let ordered = due.sorted { ($0.value.since, $0.key) < ($1.value.since, $1.key) }
        for (name, candidate) in ordered.prefix(min(room, limits.maxClaimsPerTick)) {
            candidates[name] = nil
            reserved += 1
            out.append(.claim(name, stamp: candidate.stamp))
        }
        return out
    }

    // MARK: Claimed requests

    private mutating func read(_ name: String, _ outcome: SpoolReadOutcome, recovered: Bool) -> [SpoolDirective] {
        guard entries[name] == nil else { return [] }
        switch outcome {
        case .rejected(let rejection):
            return [.reject(name, reason: rejection.reason)]
        case let .request(request, resultExists):
            if resultExists {
                // After a restart the result is this file's own (written before the move to
                // done/); a new file naming the id of a finished request reuses it.
                return recovered ? [.finishExisting(name)]
                    : [.reject(name, reason: "reused id: results/\(request.id).json exists already (an id names one request; results are never overwritten)")]
            }
            if let other = entries.first(where: { $0.value.request.id == request.id }) {
                return [.reject(name, reason: "reused id: processing/\(other.key) has requestId \(request.id) and is not finished")]
            }
            entries[name] = Entry(request: request, phase: connected ? .submitting : .toSubmit)
            return connected ? [.submit(name, request.spec)] : []
        }
    }

    private mutating func submitFailed(_ name: String, _ code: ErrorCode?, _ reason: String) -> [SpoolDirective] {
        guard let entry = entries[name], entry.phase == .submitting else { return [] }
        switch code {
        case .duplicateId?:
            entries[name] = nil
            return [.reject(name, reason: "reused id: the cluster has a task \(entry.request.id) with another spec (\(reason))")]
        case .invalidTask?, .badMessage?, .unexpected?:
            entries[name] = nil
            return [.reject(name, reason: "refused by the scheduler: \(reason)")]
        default:
            entries[name]?.phase = .toSubmit  // connection trouble: again at the next tick
            return []
        }
    }

    private mutating func resubmitAll() -> [SpoolDirective] {
        var out: [SpoolDirective] = []
        for name in entries.keys.sorted() {
            guard let entry = entries[name] else { continue }
            if case .completing = entry.phase { continue }
            entries[name]?.phase = .submitting
            out.append(.submit(name, entry.request.spec))
        }
        return out
    }

    private mutating func retries(now: Int64) -> [SpoolDirective] {
        renamedAt = renamedAt.filter { now - $0.value <= limits.renameMemoryMs }
        var out: [SpoolDirective] = []
        for name in entries.keys.sorted() {
            guard let entry = entries[name] else { continue }
            switch entry.phase {
            case .toSubmit where connected:
                entries[name]?.phase = .submitting
                out.append(.submit(name, entry.request.spec))
            case .completing(let bytes):
                out.append(.complete(name, id: entry.request.id, result: bytes))
            default: break
            }
        }
        return out
    }
}
