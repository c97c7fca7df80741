import ArgumentParser
import Foundation
import Logging
import SwarmClient
import SwarmProtocol

/// Options every client command shares.
struct ClientOptions: ParsableArguments {
    @Option(name: .long, help: "Scheduler HOST:PORT (default: $SWARM_SCHEDULER, then 127.0.0.1:7700).")
    var scheduler: String?

    @Option(name: .long, help: "File holding the cluster token (default: $SWARM_TOKEN).")
    var tokenFile: String?

    var address: String {
        scheduler ?? ProcessInfo.processInfo.environment["SWARM_SCHEDULER"].flatMap { $0.isEmpty ? nil : $0 } ?? "127.0.0.1:7700"
    }

    func client() throws -> SwarmClient {
        do {
            let (token, name) = try loadClientCredentials(file: tokenFile)
            return try SwarmClient(address: address, token: token, name: name)
        } catch let error as TokenError {
            throw CLIError(error.description)
        }
    }
}

/// `--log-level`, for the long-running roles.
struct LogOptions: ParsableArguments {
    @Option(name: .long, help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String?

    func bootstrap(default level: Logger.Level) throws -> Logger {
        let text = logLevel ?? ProcessInfo.processInfo.environment["SWARM_LOG_LEVEL"]
        var chosen = level
        if let text {
            guard let parsed = Logger.Level(rawValue: text.lowercased()) else {
                throw ValidationError("unknown log level '\(text)'")
            }
            chosen = parsed
        }
        let final = chosen
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = final
            return handler
        }
        return Logger(label: "swarm")
    }
}

/// A failure already phrased for the user: printed as one line, exit code 2.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Runs a client action, mapping every client failure to one clear line and a non-zero exit.
func runClient<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as ClientError {
        printError(error.description)
        if case .waitTimedOut = error { throw ExitCode(124) }
        throw ExitCode(2)
    } catch let error as CLIError {
        printError(error.description)
        throw ExitCode(2)
    }
}

/// A usage problem found after parsing (e.g. in a config file): one line, exit 64 like
/// the parser's own usage errors.
func usageError(_ message: String) -> ExitCode {
    printError(message)
    return ExitCode(64)
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data("swarm: error: \(message)\n".utf8))
}

/// Writes a line to stdout at once (no buffering: tests and scripts read it live).
func printLine(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}

/// `K=V` pairs from repeated options.
func parsePairs(_ pairs: [String], option: String) throws -> [String: String] {
    var result: [String: String] = [:]
    for pair in pairs {
        guard let eq = pair.firstIndex(of: "="), eq != pair.startIndex else {
            throw ValidationError("\(option) wants KEY=VALUE, got '\(pair)'")
        }
        result[String(pair[..<eq])] = String(pair[pair.index(after: eq)...])
    }
    return result
}

func hostName() -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    gethostname(&buffer, buffer.count)
    let name = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    return name.isEmpty ? "worker" : name
}
