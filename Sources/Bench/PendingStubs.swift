// TEMPORARY: replaced by the renderers' branch at merge.
public final class TerminalProgress: BenchProgress {
    public init() {}
    public func begin(_ phase: String, total: Int) { print("… \(phase)") }
    public func update(done: Int) {}
    public func end(_ result: String) { print("  \(result)") }
}
public enum TerminalSummary { public static func render(_ r: BenchReport, width: Int = 100) -> String { r.targets.map { "\($0.name): \($0.measured) target \($0.target) met \(String(describing: $0.met))" }.joined(separator: "\n") } }
enum MarkdownReport { static func render(_ r: BenchReport) -> String { "" } }
enum HTMLReport { static func render(_ r: BenchReport) -> String { "" } }
