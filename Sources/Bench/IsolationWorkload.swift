import Foundation
import SwarmProtocol

/// `isolation`: what swarm isolates between concurrent tasks and what it does not. Plain
/// command tasks run at once and each (a) appends small lines to a shared file with
/// O_APPEND, (b) writes a 64 KiB record to another shared file in chunks from offset 0
/// without O_APPEND, (c) writes and reads back a file in its own work directory, and (d)
/// reports its task id, cwd, pid, process group and cgroup. The files are analysed here
/// (`IsolationAnalysis`, pure) and summed up in a table. Only a surprise fails the workload:
/// a corrupted own file, lost append lines, or tasks sharing a work directory or an id.
public struct IsolationWorkload: Workload {
    public let name = "isolation"
    /// Chunks of the non-atomic record (each one line of about 4 KiB).
    static let recordChunks = 16
    static let ownLines = 100

    public init() {}

    public func run(_ context: BenchContext) throws -> WorkloadReport {
        let options = context.options
        var report = WorkloadReport(name: name, title: "Isolation between concurrent tasks", description: """
            Concurrent plain-command tasks each append small lines to one shared file (O_APPEND), write a \
            64 KiB record to another shared file in chunks from offset 0 without O_APPEND, write and read \
            back a file in their own work directory, and report their task id, working directory, process \
            group and cgroup. swarm gives every task its own work directory, environment and process \
            group; it does not sandbox the filesystem or limit CPU and memory. Small O_APPEND writes stay \
            whole lines (in interleaved order); a record written in pieces without O_APPEND is clobbered \
            or torn when several tasks write it at once: tasks that share files must coordinate.
            """)
        let tasks = options.quick ? 10 : max(1, options.isolationTasks)
        let lines = options.quick ? 200 : 500
        let scratch = try context.scratchDirectory(name)
        let appendPath = scratch + "/append.log"
        let recordPath = scratch + "/record.txt"
        let observations = scratch + "/observations"
        try FileManager.default.createDirectory(atPath: observations, withIntermediateDirectories: true)
        let specs = (0..<tasks).map { i in
            var spec = TaskSpec(command: ["/bin/sh", "-c", Self.script, "isolation", String(i), appendPath, recordPath,
                                          observations, String(lines), String(Self.recordChunks), String(Self.ownLines)])
            spec.timeout = 300
            spec.labels = ["bench": name]
            return spec
        }
        let concurrency = max(1, min(tasks, context.cluster.totalSlots))
        report.parameters = ["tasks": String(tasks), "appendLinesPerTask": String(lines),
                             "recordBytes": String(Self.recordChunks * (IsolationAnalysis.fill.count + 12)),
                             "recordChunks": String(Self.recordChunks), "scratch": scratch]
        context.progress.begin("isolation: \(tasks) concurrent writers", total: tasks)
        let (figures, infos) = try context.runBatch(specs, label: "run 1", concurrency: concurrency, sleepSeconds: nil,
                                                    timeoutSeconds: 600)
        context.progress.update(done: infos.filter { $0.state.isTerminal }.count)
        report.runs.append(figures)

        let appendText = (FileManager.default.contents(atPath: appendPath)).map { String(decoding: $0, as: UTF8.self) } ?? ""
        let record = FileManager.default.contents(atPath: recordPath).map { [UInt8]($0) } ?? []
        var found: [IsolationObservation] = []
        for (i, info) in infos.enumerated() {
            let text = info.output.flatMap { $0.contains("ISO index=") ? $0 : nil }
                ?? FileManager.default.contents(atPath: "\(observations)/\(i).txt").map { String(decoding: $0, as: UTF8.self) }
            if let text, var o = IsolationAnalysis.parseObservation(text) {
                o.expectedId = info.id
                found.append(o)
            }
        }
        let append = IsolationAnalysis.analyzeAppend(appendText, tasks: tasks, linesPerTask: lines)
        let recordOutcome = IsolationAnalysis.analyzeRecord(record, chunks: Self.recordChunks)
        let identity = IsolationAnalysis.analyzeIdentities(found, ownLines: Self.ownLines)
        report.tables.append(IsolationAnalysis.table(append: append, record: recordOutcome, identity: identity,
                                                     tasks: tasks, scratch: scratch))
        context.progress.end("\(tasks) tasks: \(found.count) reported, append \(append.intact)/\(tasks * lines) lines intact, record \(recordOutcome.summary)")

        if found.isEmpty && append.intact == 0 && context.cluster.mode == "remote" {
            report.notes.append("the tasks' files are not visible here (remote workers without a shared filesystem?): nothing checked")
            return report
        }
        let surprises = IsolationAnalysis.surprises(append: append, identity: identity, tasks: tasks)
        report.notes += surprises
        if !surprises.isEmpty { report.passed = false }
        for run in report.runs where run.lost > 0 || run.duplicated > 0 {
            report.passed = false
            report.notes.append("\(run.label): \(run.lost) lost, \(run.duplicated) ran more than once")
        }
        return report
    }

    /// Each task: `sh -c SCRIPT isolation INDEX APPEND RECORD OBSDIR LINES CHUNKS OWNLINES`.
    static let script = #"""
    i=$1; append=$2; record=$3; obsdir=$4; lines=$5; chunks=$6; own=$7
    pad=abcdefghijklmnopqrstuvwxyz012345
    fill=$pad; while [ ${#fill} -lt 4096 ]; do fill=$fill$fill; done
    pgid=-; cg=-
    if [ -r /proc/$$/stat ]; then read -r st < /proc/$$/stat; set -- $st; pgid=$5; fi
    if [ -r /proc/self/cgroup ]; then read -r cg < /proc/self/cgroup; fi
    vm=$(ulimit -v 2>/dev/null); cwd=$(pwd -P)
    # (a) small lines, O_APPEND: one write each
    j=0; while [ $j -lt $lines ]; do echo "a:$i:$j:$pad" >> "$append"; j=$((j + 1)); done
    # (b) one record in chunks from offset 0, no O_APPEND, a pause half-way
    { k=0; while [ $k -lt $chunks ]; do
        printf 'r:%s:%s:%s\n' "$i" "$k" "$fill"
        if [ $k -eq $((chunks / 2)) ]; then sleep 0.02; fi
        k=$((k + 1)); done; } > "$record"
    # (c) own file in the work dir, read back
    : > own.txt; k=0; while [ $k -lt $own ]; do echo "own:$i:$k" >> own.txt; k=$((k + 1)); done
    ok=0; k=0; while IFS= read -r l; do [ "$l" = "own:$i:$k" ] && ok=$((ok + 1)); k=$((k + 1)); done < own.txt
    # (d) who am I
    out="ISO index=$i
    ISO id=$SWARM_TASK_ID
    ISO cwd=$cwd
    ISO workdir=$SWARM_WORK_DIR
    ISO pid=$$
    ISO pgid=$pgid
    ISO own=$ok/$k
    ISO cgroup=$cg
    ISO vmem=$vm"
    printf '%s\n' "$out" > "$obsdir/$i.txt"
    printf '%s\n' "$out"
    """#
}

/// What one isolation task reported about itself.
struct IsolationObservation: Equatable, Sendable {
    var index: Int
    var taskId: String
    /// The id swarm gave the task (from the bench's side), to compare with `taskId`.
    var expectedId: String?
    var cwd: String
    var workDir: String
    var pid: String
    var pgid: String
    var ownIntact: Int
    var ownTotal: Int
    var cgroup: String
    var vmem: String
}

/// Pure analysis of the isolation tasks' files and reports.
enum IsolationAnalysis {
    static let pad = "abcdefghijklmnopqrstuvwxyz012345"
    /// The record's filler: `pad` doubled up to 4,096 characters, as the script builds it.
    static let fill = String(repeating: pad, count: 4096 / pad.count)

    struct AppendFindings: Equatable {
        var intact = 0
        /// Lines that are not `a:TASK:LINE:PAD` with a known task and line.
        var malformed = 0
        var duplicates = 0
        var missing = 0
        var perTask: [Int: Int] = [:]
        /// Lines of different tasks alternate (more task switches than tasks).
        var interleaved = false
    }

    enum RecordOutcome: Equatable {
        case empty
        /// Exactly one writer's whole record: the last writer won.
        case intact(writer: Int)
        /// Pieces of several writers, lines cut or NUL holes (a writer's offset past a truncation).
        case torn(writers: [Int], badLines: Int, nulBytes: Int)

        var summary: String {
            switch self {
            case .empty: "empty"
            case .intact(let w): "intact (task \(w)'s, the last writer)"
            case let .torn(writers, bad, nuls): "torn: pieces of \(writers.count) writers, \(bad) cut lines, \(nuls) NUL bytes"
            }
        }
    }

    struct IdentityFindings: Equatable {
        var reported = 0
        var distinctWorkDirs = 0
        var cwdIsWorkDir = 0
        var distinctIds = 0
        /// `$SWARM_TASK_ID` equal to the id the scheduler gave the task.
        var idsMatching = 0
        var distinctPgids = 0
        /// Tasks leading their own process group (pgid = pid).
        var groupLeaders = 0
        var ownIntact = 0
        /// Indexes of tasks whose own file did not read back whole.
        var ownCorrupted: [Int] = []
        var distinctCgroups = 0
        var vmemUnlimited = 0
    }

    static func analyzeAppend(_ text: String, tasks: Int, linesPerTask: Int) -> AppendFindings {
        var f = AppendFindings()
        var seen = Set<Int>()
        var switches = 0
        var last: Int?
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        if lines.last == "" { lines.removeLast() }
        for line in lines {
            let parts = line.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 4, parts[0] == "a", parts[3] == pad, let t = Int(parts[1]), let j = Int(parts[2]),
                  (0..<tasks).contains(t), (0..<linesPerTask).contains(j) else {
                f.malformed += 1
                continue
            }
            guard seen.insert(t * linesPerTask + j).inserted else {
                f.duplicates += 1
                continue
            }
            f.intact += 1
            f.perTask[t, default: 0] += 1
            if let last, last != t { switches += 1 }
            last = t
        }
        f.missing = tasks * linesPerTask - seen.count
        f.interleaved = switches > max(0, f.perTask.count - 1)
        return f
    }

    static func analyzeRecord(_ bytes: [UInt8], chunks: Int) -> RecordOutcome {
        guard !bytes.isEmpty else { return .empty }
        let nuls = bytes.filter { $0 == 0 }.count
        var lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false)
        let endsWithNewline = bytes.last == 0x0A
        if endsWithNewline { lines.removeLast() }
        var writers: [Int] = []
        var sequence: [(writer: Int, chunk: Int)] = []
        var bad = 0
        for line in lines {
            let parts = String(decoding: line, as: UTF8.self).split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 4, parts[0] == "r", parts[3] == fill, let w = Int(parts[1]), let k = Int(parts[2]) else {
                bad += 1
                continue
            }
            if !writers.contains(w) { writers.append(w) }
            sequence.append((w, k))
        }
        if nuls == 0, bad == 0, endsWithNewline, writers.count == 1, sequence.count == chunks,
           sequence.map(\.chunk) == Array(0..<chunks) {
            return .intact(writer: writers[0])
        }
        return .torn(writers: writers.sorted(), badLines: bad, nulBytes: nuls)
    }

    /// The `ISO key=value` lines of one task; nil if its index or id is missing.
    static func parseObservation(_ text: String) -> IsolationObservation? {
        var values: [String: String] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("ISO ") {
            let body = line.dropFirst(4)
            guard let eq = body.firstIndex(of: "=") else { continue }
            values[String(body[..<eq])] = String(body[body.index(after: eq)...])
        }
        guard let index = values["index"].flatMap({ Int($0) }), let id = values["id"] else { return nil }
        let own = (values["own"] ?? "0/0").split(separator: "/").map { Int($0) ?? 0 }
        return IsolationObservation(index: index, taskId: id, cwd: values["cwd"] ?? "", workDir: values["workdir"] ?? "",
                                    pid: values["pid"] ?? "", pgid: values["pgid"] ?? "",
                                    ownIntact: own.first ?? 0, ownTotal: own.count > 1 ? own[1] : 0,
                                    cgroup: values["cgroup"] ?? "", vmem: values["vmem"] ?? "")
    }

    static func analyzeIdentities(_ observations: [IsolationObservation], ownLines: Int) -> IdentityFindings {
        var f = IdentityFindings()
        f.reported = observations.count
        f.distinctWorkDirs = Set(observations.map(\.workDir)).count
        f.cwdIsWorkDir = observations.filter { !$0.cwd.isEmpty && $0.cwd == $0.workDir }.count
        f.distinctIds = Set(observations.map(\.taskId)).count
        f.idsMatching = observations.filter { $0.expectedId == nil || $0.expectedId == $0.taskId }.count
        f.distinctPgids = Set(observations.map(\.pgid)).count
        f.groupLeaders = observations.filter { $0.pgid == $0.pid }.count
        for o in observations {
            if o.ownIntact == ownLines && o.ownTotal == ownLines { f.ownIntact += 1 } else { f.ownCorrupted.append(o.index) }
        }
        f.ownCorrupted.sort()
        f.distinctCgroups = Set(observations.map(\.cgroup)).count
        f.vmemUnlimited = observations.filter { $0.vmem == "unlimited" }.count
        return f
    }

    /// What should not have happened; empty when every check held.
    static func surprises(append: AppendFindings, identity: IdentityFindings, tasks: Int) -> [String] {
        var s: [String] = []
        if identity.reported < tasks { s.append("\(tasks - identity.reported) of \(tasks) tasks did not report") }
        if !identity.ownCorrupted.isEmpty {
            s.append("own work-directory file corrupted in \(identity.ownCorrupted.count) tasks (indexes \(identity.ownCorrupted.map(String.init).joined(separator: ", ")))")
        }
        if identity.distinctWorkDirs < identity.reported {
            s.append("tasks shared work directories: \(identity.distinctWorkDirs) distinct for \(identity.reported) tasks")
        }
        if identity.distinctIds < identity.reported || identity.idsMatching < identity.reported {
            s.append("task ids in the environment not distinct or not the task's own")
        }
        if append.missing > 0 || append.malformed > 0 || append.duplicates > 0 {
            s.append("O_APPEND file: \(append.missing) lines lost, \(append.malformed) malformed, \(append.duplicates) duplicated")
        }
        return s
    }

    /// The "what is and is not isolated" table.
    static func table(append: AppendFindings, record: RecordOutcome, identity i: IdentityFindings,
                      tasks: Int, scratch: String) -> ReportTable {
        let n = i.reported
        func yes(_ ok: Bool) -> String { ok ? "isolated" : "NOT isolated" }
        return ReportTable(title: "what is and is not isolated", columns: ["aspect", "isolation", "what this run saw"], rows: [
            ["own work directory", yes(n > 0 && i.distinctWorkDirs == n && i.ownCorrupted.isEmpty),
             "\(i.distinctWorkDirs) distinct work dirs for \(n) tasks (cwd = $SWARM_WORK_DIR in \(i.cwdIsWorkDir)); own file read back whole in \(i.ownIntact)"],
            ["environment", yes(n > 0 && i.distinctIds == n && i.idsMatching == n),
             "\(i.distinctIds) distinct $SWARM_TASK_ID for \(n) tasks, \(i.idsMatching) equal to the task's id"],
            ["process group", yes(n > 0 && i.distinctPgids == n),
             "\(i.distinctPgids) distinct process groups for \(n) tasks, \(i.groupLeaders) tasks lead their own"],
            ["shared file, O_APPEND small writes", "lines intact, order interleaved",
             "\(append.intact) of \(append.intact + append.missing) lines intact, \(append.missing) missing, \(append.malformed) malformed; interleaved: \(append.interleaved ? "yes" : "no")"],
            ["shared file without O_APPEND", "not isolated: last writer wins or torn", record.summary],
            ["filesystem", "no sandbox: tasks write anywhere the worker user can",
             "every task wrote to \(scratch), outside its work directory"],
            ["CPU and memory", "not limited (no cgroups per task)",
             "\(i.distinctCgroups) distinct cgroup(s) for \(n) tasks; ulimit -v unlimited in \(i.vmemUnlimited)"],
        ])
    }
}
