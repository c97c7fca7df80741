import ArgumentParser
import Foundation
import Logging
import SwarmClient
import SwarmCluster
import SwarmProtocol
import SwarmTransport
#if canImport(Glibc)
import Glibc
#endif

/// Options every client command shares.
struct ClientOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Scheduler HOST:PORT (default: $SWARM_SCHEDULER, then 127.0.0.1:7700).", valueName: "HOST:PORT"))
    var scheduler: String?

    @Option(name: .long, help: ArgumentHelp("File holding the cluster token (default: $SWARM_TOKEN).", valueName: "FILE"))
    var tokenFile: String?

    @OptionGroup var tls: TLSOptions

    var address: String {
        scheduler ?? environmentScheduler ?? "127.0.0.1:7700"
    }

    func client() throws -> SwarmClient {
        do {
            let (token, name) = try loadClientCredentials(file: tokenFile)
            let client = try SwarmClient(address: address, token: token, name: name, tls: try tls.files())
            // A reader gone while nothing is written (`logs -f ID | head -1` on a quiet task)
            // is noticed while waiting, not at the task's next output.
            client.whileWaiting = Console.checkStdout
            return client
        } catch let error as TokenError {
            throw CLIError(error.description)
        }
    }
}

/// `--tls-cert`, `--tls-key`, `--tls-ca`: certificate mode (mutual TLS), on every role.
struct TLSOptions: ParsableArguments {
    @Option(name: .customLong("tls-cert"), help: ArgumentHelp("This side's TLS certificate (PEM; with --tls-key and --tls-ca: mutual TLS instead of the token's PSK).", valueName: "FILE"))
    var cert: String?
    @Option(name: .customLong("tls-key"), help: ArgumentHelp("The private key of --tls-cert (PEM).", valueName: "FILE"))
    var key: String?
    @Option(name: .customLong("tls-ca"), help: ArgumentHelp("The CA the other side's certificate must be signed by (PEM).", valueName: "FILE"))
    var ca: String?

    /// The three files (flags first, then cluster.json's `tlsCert`, `tlsKey`, `tlsCa`), or
    /// nil; given in part, or unreadable, a one-line usage error.
    func files(cert fileCert: String? = nil, key fileKey: String? = nil, ca fileCa: String? = nil) throws -> TLSCertificateFiles? {
        do {
            let files = try TLSCertificateFiles.from(cert: cert ?? fileCert, key: key ?? fileKey, ca: ca ?? fileCa)
            if let files { _ = try TLSContext(server: false, files: files) }  // readable, key matches
            return files
        } catch {
            throw usageError(error.description)
        }
    }
}

/// `--http-tls-cert`, `--http-tls-key`: the certificate an HTTP listener serves over HTTPS.
struct HTTPTLSOptions: ParsableArguments {
    @Option(name: .customLong("http-tls-cert"), help: ArgumentHelp("Certificate (PEM chain) the --http-listen listener serves over HTTPS, with --http-tls-key (default: --tls-cert in certificate mode, else a self-signed one where HTTPS is needed).", valueName: "FILE"))
    var cert: String?
    @Option(name: .customLong("http-tls-key"), help: ArgumentHelp("The private key of --http-tls-cert (PEM).", valueName: "FILE"))
    var key: String?

    /// Both (flags first, then cluster.json's `httpTlsCert`, `httpTlsKey`), or neither; half
    /// a pair, an unreadable file or a key not matching is a one-line usage error.
    func pair(cert fileCert: String?, key fileKey: String?) throws -> (cert: String, key: String)? {
        switch (cert ?? fileCert, key ?? fileKey) {
        case (nil, nil): return nil
        case let (cert?, key?):
            do { _ = try HTTPSCertificate.given(cert: cert, key: key) } catch { throw usageError(error.description) }
            return (cert, key)
        default: throw usageError("--http-tls-cert and --http-tls-key go together (give both, or neither)")
        }
    }
}

/// `$SWARM_SCHEDULER` when set and not empty: the scheduler every client and worker dials
/// when nothing more specific says.
var environmentScheduler: String? {
    ProcessInfo.processInfo.environment["SWARM_SCHEDULER"].flatMap { $0.isEmpty ? nil : $0 }
}

/// `--log-level` and `--log-format`, for the long-running roles.
struct LogOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("trace, debug, info, notice, warning, error or critical (default: $SWARM_LOG_LEVEL, then info).", valueName: "LEVEL"))
    var logLevel: String?

    @Option(name: .long, help: ArgumentHelp("text (one line per event, default) or json (one JSON object per line); default: $SWARM_LOG_FORMAT, then text.", valueName: "text|json"))
    var logFormat: String?

    func bootstrap(default level: Logger.Level) throws -> Logger {
        let environment = ProcessInfo.processInfo.environment
        let text = logLevel ?? environment["SWARM_LOG_LEVEL"]
        var chosen = level
        if let text {
            guard let parsed = Logger.Level(rawValue: text.lowercased()) else {
                throw ValidationError("unknown log level '\(text)'")
            }
            chosen = parsed
        }
        let format = (logFormat ?? environment["SWARM_LOG_FORMAT"] ?? "text").lowercased()
        guard format == "text" || format == "json" else {
            throw ValidationError("unknown log format '\(logFormat ?? format)' (text or json)")
        }
        let final = chosen
        LoggingSystem.bootstrap { label in
            if format == "json" {
                var handler = JSONLogHandler(label: label)
                handler.logLevel = final
                return handler
            }
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

/// One line whatever the message quotes: ids and names a user or a peer gave (a bad `--after`
/// id, a server's reason) have their control characters escaped (`PeerText.safe`), so an error
/// cannot start a line of its own or send terminal escapes.
func printError(_ message: String) {
    Console.write("swarm: error: \(PeerText.safe(message, limit: maxErrorCharacters))\n", to: 2)
}

/// The most characters of an error line (longer ones say how much was cut).
let maxErrorCharacters = 2_000

/// How tasks ended when not all succeeded (`task ID STATE: REASON`, `N of M tasks did not
/// succeed`): one line `swarm: ...` on stderr, never `swarm: error: ...`, which is for the
/// command's own failures. The same form for every verb that waits (README, "Exit codes").
func printOutcome(_ message: String) {
    Console.write("swarm: \(message)\n", to: 2)
}

/// Writes a line to stdout at once (no buffering: tests and scripts read it live).
func printLine(_ text: String) {
    writeOut(text + "\n")
}

/// Writes `text` to stdout at once. Every verb's output goes through here (or `printLine`),
/// so a reader that went away (`swarm logs ID | head`) ends it the same quiet way.
func writeOut(_ text: String) {
    Console.write(text, to: 1)
}

/// Standard output and error of every verb. SIGPIPE is ignored in the whole process (the
/// event loop needs that for its sockets), so a closed reader shows up here as EPIPE.
///
/// Contract (README, "Exit codes"): when the reader of stdout goes away, a command that only
/// talks to the scheduler exits at once, quietly, with status 0: the reader chose to stop
/// reading, which is not the command's failure (`set -o pipefail` scripts stay green). A
/// command that owns processes (`up`, `worker`, `scheduler`, `demo`, `bench`) drops its
/// further output instead and goes on, so its tasks are still stopped the normal way.
enum Console {
    enum BrokenPipe { case exitQuietly, dropOutput }
    nonisolated(unsafe) static var onBrokenPipe = BrokenPipe.exitQuietly
    nonisolated(unsafe) private static var stdoutGone = false

    /// Call first thing: before any event loop exists, a write to a closed pipe would kill
    /// the process with SIGPIPE instead of returning EPIPE.
    static func ignoreSigpipe() {
        signal(SIGPIPE, SIG_IGN)
    }

    /// Writes all of `text` to `fd` (1 or 2), retrying short writes and EINTR. On EPIPE to
    /// stdout, applies `onBrokenPipe`; other failures (and any on stderr) drop the text: there
    /// is nowhere left to report them.
    static func write(_ text: String, to fd: Int32) {
        if fd == 1 && stdoutGone { return }
        var text = text
        text.withUTF8 { buffer in
            var offset = 0
            while offset < buffer.count {
                let n = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if n > 0 { offset += n; continue }
                if n < 0 && errno == EINTR { continue }
                if n < 0 && errno == EAGAIN { usleep(1_000); continue }
                if fd == 1 && n < 0 && errno == EPIPE { brokenStdout() }
                return
            }
        }
    }

    /// Applies `onBrokenPipe` if stdout's reader has gone (a pipe with no reader polls as
    /// POLLERR, a hung-up terminal as POLLHUP), without writing anything.
    static func checkStdout() {
        guard !stdoutGone else { return }
        var fd = pollfd(fd: 1, events: 0, revents: 0)
        guard poll(&fd, 1, 0) == 1, fd.revents & Int16(POLLERR | POLLHUP) != 0 else { return }
        brokenStdout()
    }

    private static func brokenStdout() {
        stdoutGone = true
        if onBrokenPipe == .exitQuietly { exit(0) }
    }
}

/// `K=V` pairs from repeated options.
func parsePairs(_ pairs: [String], option: String) throws -> [String: String] {
    var result: [String: String] = [:]
    for pair in pairs {
        guard let eq = pair.firstIndex(of: "="), eq != pair.startIndex else {
            throw ValidationError("\(option) wants KEY=VALUE, got '\(pair)'")
        }
        let key = String(pair[..<eq])
        // Twice the same key is a contradiction, not "the last one wins" silently.
        if let earlier = result[key] {
            throw ValidationError("\(option) names '\(key)' twice ('\(key)=\(earlier)' and '\(pair)'); give each key once")
        }
        result[key] = String(pair[pair.index(after: eq)...])
    }
    return result
}

func hostName() -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    gethostname(&buffer, buffer.count)
    let name = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    return name.isEmpty ? "worker" : name
}
