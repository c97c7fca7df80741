import Foundation
import SwarmProtocol

/// The submit path as users run it: `swarm submit --file F` writes the batch's ids, then
/// `swarm wait` on those ids, both child processes of the bench against its cluster, timed
/// from starting the first to the second's exit. The bench then reads the tasks' final infos
/// on its own connection (untimed) for lost, duplicated and latency figures.
struct CLISubmitArm {
    let context: BenchContext
    let executable: String
    let address: String
    let directory: String
    let concurrency: Int

    /// Nil when the context cannot say which `swarm` to run or where its scheduler listens.
    init?(_ context: BenchContext, concurrency: Int) throws {
        guard var executable = context.swarmExecutable, let address = context.schedulerAddress else { return nil }
        // A child shell would resolve /proc/self/exe to itself.
        if executable == "/proc/self/exe" {
            executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: executable)) ?? executable
        }
        self.context = context
        self.executable = executable
        self.address = address
        self.concurrency = concurrency
        directory = try context.scratchDirectory("spawn-cli")
    }

    /// The shell script of one run: submit, then wait; the exit status is the first failure's.
    static func script(executable: String, address: String, file: String, ids: String, errors: String, timeoutSeconds: Double) -> String {
        let swarm = shellQuote(executable)
        return "\(swarm) submit --scheduler \(shellQuote(address)) --file \(shellQuote(file)) > \(shellQuote(ids)) 2> \(shellQuote(errors))"
            + " && \(swarm) wait --scheduler \(shellQuote(address)) --timeout \(Int(timeoutSeconds.rounded(.up)))"
            + " $(cat \(shellQuote(ids))) > /dev/null 2>> \(shellQuote(errors))"
    }

    func run(_ specs: [TaskSpec], label: String, timeoutSeconds: Double) throws -> RunFigures {
        let file = directory + "/tasks.jsonl", idsFile = directory + "/ids.txt", errors = directory + "/stderr.txt"
        let lines = try specs.map { spec -> String in
            String(decoding: try JSONSerialization.data(withJSONObject: ["command": spec.command]), as: UTF8.self)
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let script = Self.script(executable: executable, address: address, file: file, ids: idsFile, errors: errors,
                                 timeoutSeconds: timeoutSeconds)
        let before = context.processFigures()
        // Wall clock beside the workers' `startedAtUs`; the run's duration on the monotonic clock.
        let submitUs = unixMicros()
        let start = monotonicMicros()
        let status = try Baseline.runShell(script)
        let wallSeconds = Double(monotonicMicros() - start) / 1_000_000
        let after = context.processFigures()
        let ids = ((try? String(contentsOfFile: idsFile, encoding: .utf8)) ?? "")
            .split(whereSeparator: \.isNewline).map { String($0.split(separator: " ").first ?? "") }.filter { !$0.isEmpty }
        guard status == 0, ids.count == specs.count else {
            let stderr = ((try? String(contentsOfFile: errors, encoding: .utf8)) ?? "").split(whereSeparator: \.isNewline).prefix(3)
            throw BenchError.failed("\(label): swarm submit --file / swarm wait exited \(status) with \(ids.count) of "
                + "\(specs.count) ids: \(stderr.joined(separator: " / "))")
        }
        let infos = try context.client.wait(ids, timeoutSeconds: 60)
        var figures = BatchMeasure.figures(infos: infos, ids: ids, label: label, concurrency: concurrency,
                                           submitUs: submitUs, wallSeconds: wallSeconds, sleepSeconds: nil)
        BatchMeasure.addUsage(&figures, before: before, after: after)
        return figures
    }
}
