import Foundation
import Testing
@testable import SwarmScheduler

/// A swarm cluster spread over the hosts of a `NetnsHarness`, for the multi-host tests: the
/// scheduler on `hosts[0]` listening on 0.0.0.0 with a cluster token, workers each on a host
/// of its own, and the client's commands run on `clientHost`. Only the namespaces' own
/// addresses are used. `cleanup()` stops every process, then removes every namespace.
final class NetnsCluster {
    typealias Host = NetnsHarness.Host
    typealias Child = ProcessHarness.Child

    let processes: ProcessHarness
    let net: NetnsHarness
    let tokenFile: String
    /// Where the tasks of `TraceScript` append their lines, one file per task.
    let traceDir: String
    var schedulerHost: Host { net.hosts[0] }
    let clientHost: Host
    private(set) var scheduler: Child?
    private(set) var port = 0
    /// What workers and clients dial: the scheduler host's own address.
    var address: String { "\(schedulerHost.address):\(port)" }
    var stateDir: String { "\(processes.dir)/state" }

    /// `hosts` hosts; the last one is the client's.
    init(hosts: Int) throws {
        let processes = try ProcessHarness()
        do {
            net = try NetnsHarness(hosts: hosts, processes: processes)
        } catch {
            processes.cleanup()
            throw error
        }
        self.processes = processes
        clientHost = net.hosts[hosts - 1]
        tokenFile = "\(processes.dir)/token"
        traceDir = "\(processes.dir)/trace"
        try "multi-host-test-secret\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: traceDir, withIntermediateDirectories: true)
    }

    func cleanup() { net.cleanup() }

    /// Starts the scheduler on 0.0.0.0 (port 0) with the token and short failure timings.
    func startScheduler(lostAfter: Double, heartbeat: Double) throws {
        let child = try net.start("scheduler", on: schedulerHost, [
            "scheduler", "--listen", "0.0.0.0:0", "--state-dir", stateDir, "--token-file", tokenFile,
            "--lost-after", String(lostAfter), "--heartbeat", String(heartbeat),
        ])
        let line = try #require(child.waitForLine(containing: "listening on"), "the scheduler did not start")
        #expect(line.contains("listening on 0.0.0.0:"), "\(line)")
        port = try #require(Int(line.split(separator: ":").last ?? ""))
        scheduler = child
    }

    /// Starts worker `name` on `host` with its data dir under the run's dir, dialling
    /// `schedulerAddress` (default: the scheduler itself; a proxy's address puts a link between).
    @discardableResult
    func startWorker(_ name: String, on host: Host, slots: Int, labels: [String] = [], schedulerAddress: String? = nil,
                     process: String? = nil) throws -> Child {
        try net.start(process ?? name, on: host, [
            "worker", "--scheduler", schedulerAddress ?? address, "--slots", String(slots), "--name", name,
            "--data-dir", dataDir(name), "--token-file", tokenFile,
        ] + labels.flatMap { ["--label", $0] })
    }

    func dataDir(_ worker: String) -> String { "\(processes.dir)/\(worker)" }

    /// `swarm ARGS --scheduler ADDRESS --token-file F` on the client's host (the options go
    /// before a `--`, so a task's command stays its own).
    func swarm(_ arguments: [String], timeout: Double = 30, schedulerAddress: String? = nil) throws -> ProcessHarness.RunResult {
        let options = ["--scheduler", schedulerAddress ?? address, "--token-file", tokenFile]
        let end = arguments.firstIndex(of: "--") ?? arguments.endIndex
        var full = arguments
        full.insert(contentsOf: options, at: end)
        return try net.run(on: clientHost, full, timeout: timeout)
    }

    /// Workers by name, as `swarm nodes --json` shows them (empty when the scheduler cannot be asked).
    func nodes() throws -> [String: [String: Any]] {
        try keyed(swarm(["nodes", "--json"], timeout: 15).stdout, by: "name")
    }

    /// Tasks by id, as `swarm tasks --json` shows them.
    func tasks() throws -> [String: [String: Any]] {
        try keyed(swarm(["tasks", "--json"], timeout: 15).stdout, by: "id")
    }

    /// Tasks `ids` by id with their outputs (`swarm status --json`; `tasks` leaves them out).
    func outcomes(_ ids: [String]) throws -> [String: [String: Any]] {
        var tasks: [String: [String: Any]] = [:]
        for id in ids {
            let status = try swarm(["status", "--json", id], timeout: 15)
            tasks[id] = (try? JSONSerialization.jsonObject(with: Data(status.stdout.utf8))) as? [String: Any]
        }
        return tasks
    }

    private func keyed(_ json: String, by key: String) -> [String: [String: Any]] {
        let list = (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [[String: Any]] ?? []
        return Dictionary(list.compactMap { item in (item[key] as? String).map { ($0, item) } }, uniquingKeysWith: { a, _ in a })
    }

    /// Whether `names` are all registered, ready and connected.
    func ready(_ names: [String]) throws -> Bool {
        let nodes = try nodes()
        return names.allSatisfy { nodes[$0]?["state"] as? String == "ready" && nodes[$0]?["connected"] as? Bool == true }
    }

    /// Polls `condition` until it holds or `timeout` passes; records an issue saying `what` then.
    /// A condition that throws (the scheduler cannot be asked yet) does not hold.
    @discardableResult
    func waitUntil(_ what: String, timeout: Double, _ condition: () throws -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        repeat {
            if (try? condition()) == true { return true }
            usleep(50_000)
        } while Date() < deadline
        Issue.record("timed out after \(timeout) s waiting until \(what)")
        return false
    }

    /// Submits `tasks` (id to command) in one `submit --file` from the client's host;
    /// `constraints`: node labels every one of them needs.
    func submit(_ tasks: [(id: String, command: [String])], constraints: [String: String] = [:], schedulerAddress: String? = nil) throws {
        let file = "\(processes.dir)/batch-\(UInt32.random(in: 0...UInt32.max)).jsonl"
        let lines = try tasks.map { task in
            let spec: [String: Any] = ["id": task.id, "command": task.command, "constraints": constraints]
            return String(decoding: try JSONSerialization.data(withJSONObject: spec), as: UTF8.self)
        }
        try lines.joined(separator: "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let submitted = try swarm(["submit", "--file", file], schedulerAddress: schedulerAddress)
        #expect(submitted.status == 0, "submit: \(submitted.stderr)")
    }

    /// A task of `TraceScript`: attempt 1 sleeps `first` seconds, later ones `later`.
    func traced(_ id: String, first: Double, later: Double = 0.2) -> (id: String, command: [String]) {
        (id, ["sh", "-c", TraceScript.text, processes.marker, traceDir, String(first), String(later)])
    }

    /// A task of `TraceScript` whose attempt 1 runs until `openGate()`.
    func gated(_ id: String, later: Double = 0.2) -> (id: String, command: [String]) {
        (id, ["sh", "-c", TraceScript.text, processes.marker, traceDir, "gate", String(later)])
    }

    /// Lets the gated first runs end.
    func openGate() {
        FileManager.default.createFile(atPath: "\(traceDir)/gate", contents: nil)
    }

    /// The lines `TraceScript` wrote for task `id`.
    func trace(_ id: String) -> [String] {
        ((try? String(contentsOfFile: "\(traceDir)/\(id)", encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// The scheduler's durable record of runs: task id -> ["ATTEMPT:STATE", ...] in order.
    func runs() throws -> [String: [String]] { try RestartTests.runs(stateDir) }

    /// The stderr so far of the process started as `name` (a worker's is its name).
    func log(_ name: String) -> String { (try? String(contentsOfFile: "\(processes.dir)/\(name).log", encoding: .utf8)) ?? "" }

    var schedulerLog: String { log("scheduler") }

    /// Lines of the scheduler's log saying a worker was marked lost.
    var lostLines: [String] { schedulerLog.split(separator: "\n").filter { $0.contains(" lost: no heartbeat") }.map(String.init) }

    /// Runs in worker `name`'s journal whose results the scheduler has not acknowledged yet,
    /// read without touching the directory (the worker may be writing it).
    func unacknowledgedRuns(_ name: String) -> Set<String> {
        let text = (try? String(contentsOfFile: "\(dataDir(name))/runs/journal.jsonl", encoding: .utf8)) ?? ""
        var live: Set<String> = []
        for line in text.split(separator: "\n") {
            guard let record = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else { continue }
            // A start, or a result (a run without a process has no start record).
            for kind in ["start", "result"] {
                if let run = record[kind] as? [String: Any], let id = run["id"] as? String, let attempt = run["attempt"] as? Int {
                    live.insert("\(id)#\(attempt)")
                }
            }
            if let ack = record["ack"] as? [String: Any], let id = ack["id"] as? String, let attempt = ack["attempt"] as? Int {
                live.remove("\(id)#\(attempt)")
            }
        }
        return live
    }

    /// Pids of task processes of this run (any host) for attempt `attempt`.
    func taskProcesses(attempt: Int) -> [Int32] {
        ProcessHarness.processes(containing: processes.marker).filter { pid in
            let environ = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/environ"))) ?? Data()
            return environ.split(separator: 0).contains { String(decoding: $0, as: UTF8.self) == "SWARM_ATTEMPT=\(attempt)" }
        }
    }
}

/// A task that leaves a trace of each run: `start ATTEMPT NODE` when it begins, `end ATTEMPT
/// NODE` if it runs to its end, in `$1/$SWARM_TASK_ID`, and prints `ran ID attempt N on NODE`.
/// Attempt 1 sleeps `$2` seconds, or with `$2` = `gate` waits (at most 60 s) until the file
/// `$1/gate` exists, so a test decides when it ends; later attempts sleep `$3` seconds. `$0`
/// is the harness's marker.
enum TraceScript {
    static let text = #"""
        t="$1/$SWARM_TASK_ID"; echo "start $SWARM_ATTEMPT $SWARM_NODE" >> "$t"
        if [ "$SWARM_ATTEMPT" != 1 ]; then sleep "$3"
        elif [ "$2" = gate ]; then n=0; while [ ! -e "$1/gate" ] && [ $n -lt 1200 ]; do sleep 0.05; n=$((n+1)); done
        else sleep "$2"; fi
        echo "end $SWARM_ATTEMPT $SWARM_NODE" >> "$t"; echo "ran $SWARM_TASK_ID attempt $SWARM_ATTEMPT on $SWARM_NODE"
        """#
}
