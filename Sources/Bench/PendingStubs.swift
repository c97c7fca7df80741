// TEMPORARY: replaced by the helpers' branches at merge.
import SwarmProtocol
enum SyntheticAgent {
    static let runtimeName = "synthetic"
    static func write(to directory: String) throws -> String { directory + "/swarm-synthetic-agent.sh" }
    static func clusterJSON(scriptPath: String) -> [String: Any] { ["command": ["/bin/sh", "-c", "cat >/dev/null; echo hi; sleep ${SWARM_SIM_DURATION:-1}; echo done", "{model}"], "defaultModel": "fast", "health": ["command": ["true"]]] }
}
struct AgentWorkload: Workload { let name = "agent"; func run(_ c: BenchContext) throws -> WorkloadReport { WorkloadReport(name: name, title: "", description: "") } }
struct ModelsWorkload: Workload { let name = "models"; func run(_ c: BenchContext) throws -> WorkloadReport { WorkloadReport(name: name, title: "", description: "") } }
struct IsolationWorkload: Workload { let name = "isolation"; func run(_ c: BenchContext) throws -> WorkloadReport { WorkloadReport(name: name, title: "", description: "") } }
enum MarkdownReport { static func render(_ r: BenchReport) -> String { "" } }
enum HTMLReport { static func render(_ r: BenchReport) -> String { "" } }
public final class TerminalProgress: BenchProgress {
    public init() {}
    public func begin(_ phase: String, total: Int) { print("… \(phase)") }
    public func update(done: Int) {}
    public func end(_ result: String) { print("  \(result)") }
}
public enum TerminalSummary { public static func render(_ r: BenchReport, width: Int = 100) -> String { r.targets.map { "\($0.name): \($0.measured) target \($0.target) met \(String(describing: $0.met))" }.joined(separator: "\n") } }
public enum DurationDistribution { public static func problem(_ s: String) -> String? { nil } }
