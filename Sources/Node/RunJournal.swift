import Foundation
import Logging
import SwarmProtocol
#if canImport(Glibc)
import Glibc
#endif

/// What a worker keeps on disk about each run until the scheduler has acknowledged its
/// result: its start (written when its process has started) and its result (written once
/// the result is sent, before its acknowledgement is handled), both dropped on the
/// scheduler's `resultAck`. A worker restarted on the same data dir reads it to learn what its
/// previous process left behind (`recover`).
///
/// Storage: one append-only file, `{dataDir}/runs/journal.jsonl`, one JSON record a line (a
/// start, a result, or an acknowledgement), each appended with a single `write`; replaying it
/// in order gives the live entries and their results. It is rewritten (temp file + rename)
/// with only the live records once it has grown past `compactBytes` and twice its size after
/// the last rewrite, so it stays under max(`compactBytes`, 2 x the live records at the last
/// rewrite, the run being recorded included) plus one record. A file per run (create, rename, unlink for every task: the start entry, and the
/// result in `results/{id}.json` until this held results too) cost far more: on ext4 every
/// freed inode is skipped, block read and all, by each later inode allocation for minutes.
/// Per-run files `runs/{id}.json` and `results/{id}.json` (older workers) are still read, and
/// removed when acknowledged (results: by retention). Not fsynced: entries guard against the
/// worker process dying, and after a machine crash the runs are gone anyway; a torn last line
/// is skipped.
public final class RunJournal {
    public struct Entry: Codable, Sendable, Equatable {
        public var id: String
        public var attempt: Int
        /// The task's process, leader of its own process group (pgid == pid); 0: none started.
        public var pid: Int32
        public var processGroup: Int32
        /// Field 22 of `/proc/PID/stat`: with `bootId`, tells this process from a later one
        /// that got the same pid. 0: not read at the start (entries written since the spawn
        /// window below replaced that read), or no process.
        public var processStartTime: UInt64
        public var bootId: String
        public var startedAt: Int64?
        /// `CLOCK_BOOTTIME` (the clock of `/proc`'s start times) in ms just before and just
        /// after the spawn: the process holding `pid` whose start lies in it is this run's (the
        /// run held the pid through the window, so no other process could start there with
        /// it). Costs two clock reads where reading `/proc/PID/stat` at every start cost an
        /// open, a read and a close. Nil in entries of older workers.
        public var spawnFromBootMs: Int64?
        public var spawnToBootMs: Int64?

        public var run: RunRef { RunRef(id: id, attempt: attempt) }
    }

    /// A line of the journal: a started run, a finished run's result (which stands for its
    /// start too when it never had a process), or an acknowledgement.
    struct Record: Codable {
        var start: Entry?
        var ack: RunRef?
        var result: TaskResult?
    }

    public let directory: String
    /// Size past which an append rewrites the journal with only its live entries.
    let compactBytes: Int
    /// Size of the journal after the last compaction: the next one waits until the file has
    /// doubled, so thousands of live runs do not make every append rewrite them all.
    private var compactedBytes = 0
    /// The open journal file and what is known of the directory.
    let file = JournalFile()

    public init(directory: String, compactBytes: Int = 256 * 1024) {
        self.directory = directory
        self.compactBytes = compactBytes
    }

    var logPath: String { "\(directory)/journal.jsonl" }
    /// A per-run entry file (written by workers before the journal file).
    func path(_ id: String) -> String { "\(directory)/\(id).json" }

    /// Records a run whose process `pid` has just been spawned, within `spawnBootMs`
    /// (`ProcessTable.bootMs()` read before and after the spawn).
    func started(_ run: RunRef, pid: Int32, startedAt: Int64, spawnBootMs: ClosedRange<Int64>) throws(FileError) {
        var bytes: [UInt8] = [0x0A]
        bytes.reserveCapacity(256)
        Self.line(Record(start: Entry(id: run.id, attempt: run.attempt, pid: pid, processGroup: pid,
                                      processStartTime: 0, bootId: ProcessTable.bootId(), startedAt: startedAt,
                                      spawnFromBootMs: spawnBootMs.lowerBound, spawnToBootMs: spawnBootMs.upperBound)),
                  into: &bytes)
        try append(bytes) { kept in
            kept[run.id] = KeptRun(attempt: run.attempt, startedAt: startedAt, start: Array(bytes.dropFirst()))
        }
    }

    /// Records a finished run's result (`json`: `WorkerAgent.resultJSON(result)`, as the frame
    /// carried it), so it is delivered even across a worker restart until acknowledged.
    func finished(_ result: TaskResult, json: [UInt8]) throws(FileError) {
        var bytes: [UInt8] = [0x0A]
        bytes.reserveCapacity(json.count + 12)
        bytes += Array("{\"result\":".utf8)
        bytes += json.last == 0x0A ? json.dropLast() : json[...]
        bytes += [0x7D, 0x0A]
        try append(bytes) { kept in
            let line = Array(bytes.dropFirst())
            if kept[result.id]?.attempt == result.attempt {
                kept[result.id]?.result = line
            } else {
                kept[result.id] = KeptRun(attempt: result.attempt, startedAt: result.startedAt, result: line)
            }
        }
    }

    /// The scheduler has the run's result: forget the run (unless the entry is another attempt's).
    /// When the record cannot be written (a full disk), the run is forgotten in memory and
    /// the next append that succeeds, or `rewriteIfDue`, rewrites the journal from memory:
    /// else a restart would take the acknowledged run for one it interrupted and note
    /// `result: lost` in its log.
    func acknowledged(_ run: RunRef) {
        if legacyIds().contains(run.id), let legacy = fileEntry(run.id), legacy.attempt == run.attempt { unlink(path(run.id)) }
        var bytes: [UInt8] = [0x0A]
        Self.line(Record(ack: run), into: &bytes)
        let forget = { (kept: inout [String: KeptRun]) in
            if kept[run.id]?.attempt == run.attempt { kept[run.id] = nil }
        }
        do { try append(bytes, keep: forget) } catch {
            if file.kept != nil { forget(&file.kept!) }
            file.rewriteDue = true
        }
    }

    /// Rewrites the journal from memory if an acknowledgement could not be written (see
    /// `acknowledged`); the worker calls it when its data dir has room again.
    func rewriteIfDue() {
        if file.rewriteDue { compact() }
    }

    func entry(_ id: String) -> Entry? {
        entries().first { $0.id == id }
    }

    /// Every live entry, oldest start first. Leftover temp files of an interrupted write go.
    func entries() -> [Entry] {
        Self.ordered(live().entries)
    }

    static func ordered(_ entries: [String: Entry]) -> [Entry] {
        Array(entries.values).sorted { ($0.startedAt ?? 0, $0.id) < ($1.startedAt ?? 0, $1.id) }
    }

    /// The live entries with the results recorded for them (by task id; a result is its
    /// entry's attempt's).
    struct Live {
        var entries: [String: Entry] = [:]
        var results: [String: TaskResult] = [:]
    }

    /// Per-run files first, then the journal replayed over them (it is newer).
    func live() -> Live {
        var live = Live()
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        var legacy: Set<String> = []
        for name in names {
            if name.contains(".tmp-") { unlink("\(directory)/\(name)"); continue }
            guard name.hasSuffix(".json"), let entry = fileEntry(String(name.dropLast(5))) else { continue }
            live.entries[entry.id] = entry
            legacy.insert(entry.id)
        }
        file.legacyIds = legacy
        guard let data = FileManager.default.contents(atPath: logPath) else { return live }
        let decoder = JSONDecoder()
        for line in data.split(separator: 0x0A) {
            let bytes = Array(line)
            guard let record = (try? FastJSONDecoder().decode(Record.self, from: bytes))
                    ?? (try? decoder.decode(Record.self, from: line)) else { continue }  // a torn line
            Self.replay(record, into: &live)
        }
        return live
    }

    /// One record applied to what the records before it left: a start replaces the id's
    /// entry (and an earlier attempt's result), a result joins its entry (or stands for it:
    /// a run without a process has no start record), an acknowledgement of the entry's
    /// attempt removes both.
    static func replay(_ record: Record, into live: inout Live) {
        if let start = record.start {
            live.entries[start.id] = start
            if live.results[start.id]?.attempt != start.attempt { live.results[start.id] = nil }
        }
        if let result = record.result {
            if live.entries[result.id]?.attempt != result.attempt {
                let pid = Int32(clamping: result.pid ?? 0)
                live.entries[result.id] = Entry(id: result.id, attempt: result.attempt, pid: pid, processGroup: pid,
                                                processStartTime: 0, bootId: "", startedAt: result.startedAt)
            }
            live.results[result.id] = result
        }
        if let ack = record.ack, live.entries[ack.id]?.attempt == ack.attempt {
            live.entries[ack.id] = nil
            live.results[ack.id] = nil
        }
    }

    private func fileEntry(_ id: String) -> Entry? {
        guard let data = FileManager.default.contents(atPath: path(id)) else { return nil }
        return try? JSONDecoder().decode(Entry.self, from: data)
    }

    /// Ids with a per-run file of an older worker (the directory is listed once).
    private func legacyIds() -> Set<String> {
        if let ids = file.legacyIds { return ids }
        _ = live()
        return file.legacyIds ?? []
    }

    private static func line(_ record: Record, into bytes: inout [UInt8]) {
        try? FastJSONEncoder().encode(record, appendingTo: &bytes)
        bytes.append(0x0A)
    }

    /// One `write` with O_APPEND: a record is in the file whole, or (torn by a crash) skipped.
    /// It starts with a newline of its own, so a torn line before it cannot swallow it. The
    /// file stays open, its size counted here (every writer appends through this); `keep`
    /// applies the record to the live runs held in memory once it is written.
    private func append(_ bytes: [UInt8], keep: (inout [String: KeptRun]) -> Void) throws(FileError) {
        if file.kept == nil { file.kept = loadKept() }
        if file.fd < 0 { try openFile() }
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { write(file.fd, $0.baseAddress! + offset, bytes.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                let e = errno
                file.reopen()
                throw FileError(path: logPath, errno: e)
            }
            offset += n
        }
        file.size += bytes.count
        if file.kept != nil { keep(&file.kept!) }
        if file.rewriteDue || file.size > max(compactBytes, 2 * compactedBytes) { compact() }
    }

    /// The live runs' records as the file holds them, read once (the first append): after
    /// that, appends keep them up to date.
    private func loadKept() -> [String: KeptRun] {
        var kept: [String: KeptRun] = [:]
        let live = live()
        for entry in live.entries.values {
            var start: [UInt8] = []
            Self.line(Record(start: entry), into: &start)
            var run = KeptRun(attempt: entry.attempt, startedAt: entry.startedAt, start: start)
            if let result = live.results[entry.id] {
                var line: [UInt8] = []
                Self.line(Record(result: result), into: &line)
                run.result = line
            }
            kept[entry.id] = run
        }
        return kept
    }

    /// Rewrites the journal with only the live runs' records (each start, then its result),
    /// from memory: reading and decoding the whole file again at each rewrite was 9% of a
    /// worker's CPU under `bench spawn` once results were in it.
    func compact() {
        if file.kept == nil { file.kept = loadKept() }
        var bytes: [UInt8] = []
        let runs = (file.kept ?? [:]).sorted { ($0.value.startedAt ?? 0, $0.key) < ($1.value.startedAt ?? 0, $1.key) }
        for (_, run) in runs {
            if let start = run.start { bytes += start }
            if let result = run.result { bytes += result }
        }
        do { try Files.writeAtomically(bytes, to: logPath) } catch {
            compactedBytes = bytes.count  // tried again once the file has doubled (or is due)
            return
        }
        file.rewriteDue = false
        compactedBytes = bytes.count
        // The open descriptor is the replaced file's: the new file's is opened now, so the
        // worker's descriptors stay the same across a compaction (the soak counts them); if
        // that open fails, the next append tries again.
        file.reopen()
        try? openFile()
    }

    /// Opens the journal for appending and counts its size.
    private func openFile() throws(FileError) {
        let fd = open(logPath, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileError(path: logPath, errno: errno) }
        var info = stat()
        file.size = fstat(fd, &info) == 0 ? Int(info.st_size) : 0
        file.fd = fd
    }
}

/// A live run's records as written: its start line (nil for a run without a process) and its
/// result line once recorded, each ending with a newline.
struct KeptRun {
    var attempt: Int
    var startedAt: Int64?
    var start: [UInt8]?
    var result: [UInt8]?
}

/// The journal's open descriptor and counted size, shared by copies of a `RunJournal`. Used
/// from one thread (the worker's loop).
final class JournalFile: @unchecked Sendable {
    var fd: Int32 = -1
    var size = 0
    /// Ids of older workers' per-run files; nil until the directory is listed.
    var legacyIds: Set<String>?
    /// The live runs' records (what a rewrite keeps), by task id; nil until the first append.
    var kept: [String: KeptRun]?
    /// An acknowledgement is in `kept` and not in the file: the next rewrite puts it right.
    var rewriteDue = false

    /// Closes the descriptor: the next append opens the file again.
    func reopen() {
        if fd >= 0 { close(fd) }
        fd = -1
    }

    deinit { reopen() }
}
