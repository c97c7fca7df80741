// Placement benchmark: a pure ClusterState with simulated workers, a large queue of tasks
// (priorities, runtimes, models with limits, label constraints, a few unplaceable ones), and
// rounds of schedule() + completions until every placeable task has been placed.
//
//   swift build -c release --product swarm-placement-bench
//   .build/release/swarm-placement-bench [--tasks N] [--workers N] [--finish F] [--policy spread|binpack] [--seed S]
//
// --finish F: the fraction of running tasks that complete between two rounds (smaller means
// more, smaller rounds). Reports placements per second over the time spent in schedule()
// alone, submit and completion times separately, and peak RSS (VmHWM).
import Foundation
import SwarmProtocol
@_spi(PlacementInput) import SwarmScheduler

struct Options {
    var tasks = 1_000_000
    var workers = 1_000
    var finish = 0.1
    var policy = PlacementPolicy.spread
    var seed: UInt64 = 42
    var unplaceable = 1_000

    init(_ args: [String]) {
        var i = 0
        func value() -> String {
            i += 1
            guard i < args.count else { fail("missing value for \(args[i - 1])") }
            return args[i]
        }
        while i < args.count {
            switch args[i] {
            case "--tasks": tasks = parsed(Int(value()), "--tasks")
            case "--workers": workers = parsed(Int(value()), "--workers")
            case "--finish": finish = parsed(Double(value()), "--finish")
            case "--policy": policy = parsed(PlacementPolicy(rawValue: value()), "--policy")
            case "--seed": seed = parsed(UInt64(value()), "--seed")
            case "--unplaceable": unplaceable = parsed(Int(value()), "--unplaceable")
            default: fail("unknown argument \(args[i])")
            }
            i += 1
        }
        guard tasks > 0, workers > 0, finish > 0, finish <= 1 else { fail("need --tasks, --workers > 0 and 0 < --finish <= 1") }
    }
}

func parsed<T>(_ value: T?, _ option: String) -> T {
    guard let value else { fail("bad value for \(option)") }
    return value
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("swarm-placement-bench: \(message)\n".utf8))
    exit(64)
}

/// SplitMix64: reproducible runs.
struct Rng: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}

/// CPU time of this thread: unlike wall time, barely moved by other processes on the machine.
func threadCPUSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

func seconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
}

func peakRSSMiB() -> Double {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
          let kb = Double(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") else { return -1 }
    return kb / 1024
}

let options = Options(Array(CommandLine.arguments.dropFirst()))
var rng = Rng(state: options.seed)
let clock = ContinuousClock()
let modelLimits = ["opus": 2_000, "sonnet": 6_000]
var state = ClusterState(settings: SchedulerSettings(placementPolicy: options.policy, modelLimits: modelLimits))
var nowMs: Int64 = 1_800_000_000_000

// Workers: 8-32 slots; zones; every tenth has a GPU; runtimes claude (most) and codex (even
// ones, a few unhealthy); every fifth runs no plain commands.
var totalSlots = 0
for i in 0..<options.workers {
    let name = "w\(String(i).leftPadded(to: 4))"
    let slots = 8 + (i * 7) % 25
    totalSlots += slots
    var labels = ["zone": ["eu", "us", "ap"][i % 3]]
    if i % 10 == 0 { labels["gpu"] = "h100" }
    _ = try state.register(node: name, slots: slots, labels: labels, running: [], finished: [], address: nil, nowMs: nowMs, at: nowMs)
    var runtimes: [String: Bool] = [:]
    if i % 4 != 3 { runtimes["claude"] = true }
    if i % 2 == 0 { runtimes["codex"] = i % 20 != 2 }
    state.setRuntimes(node: name, runtimes: runtimes, allowsCommands: i % 5 != 0)
}

// Task kinds, all placeable on the workers above.
let kinds: [PlacementRequest] = [
    PlacementRequest(),
    PlacementRequest(constraints: ["zone": "eu"]),
    PlacementRequest(runtime: "claude", model: "opus"),
    PlacementRequest(runtime: "claude", model: "sonnet"),
    PlacementRequest(runtime: "claude", model: "haiku"),
    PlacementRequest(runtime: "claude", model: "sonnet", constraints: ["zone": "us"]),
    PlacementRequest(runtime: "codex", model: "opus", constraints: ["gpu": "h100"]),
    PlacementRequest(runtime: "codex"),
    PlacementRequest(runtime: "claude", constraints: ["zone": "ap", "gpu": "h100"]),
]

let submitStart = clock.now
let spec = TaskSpec(command: ["agent", "--task"])
for i in 0..<options.unplaceable {
    // Highest priority, and never placeable: they must not hold up anything.
    var task = spec
    task.id = "u\(i)"
    _ = try state.submit(task, request: PlacementRequest(runtime: "gemini", priority: 9), at: nowMs)
}
for i in 0..<options.tasks {
    var request = kinds[rng.below(kinds.count)]
    let p = rng.below(100)
    request.priority = p < 70 ? 0 : p < 90 ? 1 : p < 98 ? 2 : 3
    var task = spec
    task.id = "t\(i)"
    _ = try state.submit(task, request: request, at: nowMs)
    // The server takes the changes (for its store) every loop turn; so does the bench.
    if i % 10_000 == 9_999 { _ = state.takeChanges() }
}
_ = state.takeChanges()
let submitTime = seconds(clock.now - submitStart)

var running: [(node: String, id: String, attempt: Int)] = []
running.reserveCapacity(totalSlots)
var placed = 0, rounds = 0, maxOpus = 0
var placeTime = Duration.zero, finishTime = Duration.zero, takeTime = Duration.zero, placeCPU = 0.0
let wallStart = clock.now
while placed < options.tasks {
    nowMs += 1
    let start = clock.now, startCPU = threadCPUSeconds()
    let directives = state.schedule(nowMs: nowMs, at: nowMs)
    placeCPU += threadCPUSeconds() - startCPU
    placeTime += clock.now - start
    rounds += 1
    for case let .assign(node, a) in directives { running.append((node, a.id, a.attempt)) }
    placed += directives.count
    maxOpus = max(maxOpus, state.runningCount(model: "opus"))
    guard !running.isEmpty else { fail("nothing running and \(options.tasks - placed) tasks unplaced") }
    let finishing = max(1, Int(Double(running.count) * options.finish))
    let finishStart = clock.now
    for _ in 0..<finishing {
        let k = rng.below(running.count)
        running.swapAt(k, running.count - 1)
        let run = running.removeLast()
        let result = TaskResult(id: run.id, state: .succeeded, exitCode: 0, signal: nil, reason: nil, output: "",
                                pid: nil, attempt: run.attempt, startedAt: nowMs, finishedAt: nowMs)
        _ = state.taskFinished(node: run.node, result: result, at: nowMs)
    }
    finishTime += clock.now - finishStart
    let takeStart = clock.now
    _ = state.takeChanges()
    takeTime += clock.now - takeStart
}
let wall = seconds(clock.now - wallStart)

let placeSeconds = seconds(placeTime)
let reason = state.waitReason(for: "u0")
func figure(_ x: Double) -> String { String(format: "%.0f", x) }
print("""
swarm-placement-bench: \(options.tasks) tasks (+\(options.unplaceable) unplaceable) on \(options.workers) workers \
(\(totalSlots) slots), policy \(options.policy.rawValue), finish fraction \(options.finish)
submit:      \(String(format: "%.2f", submitTime)) s (\(figure(Double(options.tasks + options.unplaceable) / submitTime)) tasks/s)
placement:   \(placed) placements in \(rounds) rounds, \(String(format: "%.3f", placeSeconds)) s in schedule() \
-> \(figure(Double(placed) / placeSeconds)) placements/s (\(figure(Double(placed) / Double(rounds))) per round)
             \(String(format: "%.3f", placeCPU)) s of CPU in schedule() -> \(figure(Double(placed) / placeCPU)) placements per CPU-second
completions: \(String(format: "%.2f", seconds(finishTime))) s in taskFinished()
changes:     \(String(format: "%.2f", seconds(takeTime))) s in takeChanges() (what the server hands its store each turn)
total:       \(String(format: "%.2f", wall)) s placing and completing; \(String(format: "%.2f", submitTime + wall)) s with submits
opus peak:   \(maxOpus) running (limit \(modelLimits["opus"]!)); still queued: \(state.queuedCount) (u0: \(reason?.reason ?? "-"), unplaceable \(reason?.unplaceable ?? false))
peak RSS:    \(figure(peakRSSMiB())) MiB
""")

extension String {
    func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
