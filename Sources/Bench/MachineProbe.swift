import Foundation
import SwarmUV
import SwarmProtocol

/// The machine the bench ran on, for the report.
enum MachineProbe {
    static func current() -> MachineInfo {
        var uts = utsname()
        uname(&uts)
        func field<T>(_ value: T) -> String {
            withUnsafeBytes(of: value) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        }
        let os = read("/etc/os-release")?.split(separator: "\n")
            .first { $0.hasPrefix("PRETTY_NAME=") }
            .map { String($0.dropFirst("PRETTY_NAME=".count)).trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
        let cpu = read("/proc/cpuinfo")?.split(separator: "\n")
            .first { $0.hasPrefix("model name") }
            .flatMap { $0.split(separator: ":", maxSplits: 1).last }
            .map { $0.trimmingCharacters(in: .whitespaces) }
        let memKiB = read("/proc/meminfo")?.split(separator: "\n")
            .first { $0.hasPrefix("MemTotal:") }
            .flatMap { Double($0.split(separator: " ").dropFirst().first ?? "") }
        return MachineInfo(hostname: field(uts.nodename), os: os ?? "unknown", kernel: field(uts.release),
                           cpuModel: cpu ?? "unknown", cpus: Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))),
                           memoryGiB: ((memKiB ?? 0) / 1024 / 1024 * 10).rounded() / 10,
                           libuvVersion: ResourceLimits.libuvVersion, swarmVersion: swarmVersion)
    }

    /// The release this build belongs to.
    static let swarmVersion = SwarmVersion.release

    private static func read(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }
}

/// Writes report.json, report.md and report.html into the bench's directory.
enum ReportWriter {
    static func write(_ report: BenchReport, to directory: String) throws -> [String] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let json = try encoder.encode(report)
        let files = [
            (directory + "/report.json", json),
            (directory + "/report.md", Data(MarkdownReport.render(report).utf8)),
            (directory + "/report.html", Data(HTMLReport.render(report).utf8)),
        ]
        for (path, data) in files {
            // Whole file or nothing: a temp file renamed over the old one.
            let temp = path + ".tmp"
            try data.write(to: URL(fileURLWithPath: temp))
            guard rename(temp, path) == 0 else { throw BenchError.failed("cannot write \(path): \(String(cString: strerror(errno)))") }
        }
        return files.map(\.0)
    }
}
