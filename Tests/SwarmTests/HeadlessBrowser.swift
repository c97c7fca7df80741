import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A real headless Chromium driven through its DevTools protocol over a pipe
/// (`--remote-debugging-pipe`: JSON messages ended by NUL, commands on fd 3, answers on fd 4),
/// for the dashboard's browser test. Started in its own session and process group; `quit`
/// kills the whole group (the browser's helpers too) and reaps it. Every read is bounded in time.
final class HeadlessBrowser {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Debian's chromium, if installed.
    static let path = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// glibc's POSIX_SPAWN_SETSID (not imported into Swift): the child starts its own session
    /// and process group, which `quit` kills whole.
    private static let spawnSetsid: Int16 = 0x80

    private let pid: pid_t
    private let commands: Int32
    private let answers: Int32
    private var buffer: [UInt8] = []
    private var nextId = 0
    private var session: String?
    private var closed = false

    /// Starts the browser with a fresh profile in `profileDir` and opens `url` in a page.
    /// `ignoreCertificateErrors`: accept a self-signed HTTPS certificate (what a user does
    /// after checking its fingerprint).
    init(url: String, profileDir: String, ignoreCertificateErrors: Bool = false) throws {
        guard let path = Self.path else { throw Failure(description: "chromium is not installed") }
        var toBrowser: [Int32] = [0, 0], fromBrowser: [Int32] = [0, 0]
        guard pipe(&toBrowser) == 0, pipe(&fromBrowser) == 0 else { throw Failure(description: "pipe failed") }
        // Only the copies on fds 3 and 4 reach the browser (dup2 clears close-on-exec).
        for fd in toBrowser + fromBrowser { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, toBrowser[0], 3)
        posix_spawn_file_actions_adddup2(&actions, fromBrowser[1], 4)
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Self.spawnSetsid)
        let arguments = [path, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                         "--no-default-browser-check", "--disable-extensions", "--remote-debugging-pipe",
                         "--user-data-dir=\(profileDir)", "about:blank"] + (ignoreCertificateErrors ? ["--ignore-certificate-errors"] : [])
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var child: pid_t = 0
        let spawned = posix_spawn(&child, path, &actions, &attributes, &argv, environ)
        Glibc.close(toBrowser[0])
        Glibc.close(fromBrowser[1])
        guard spawned == 0 else {
            Glibc.close(toBrowser[1]); Glibc.close(fromBrowser[0])
            throw Failure(description: "cannot start chromium: error \(spawned)")
        }
        pid = child
        commands = toBrowser[1]
        answers = fromBrowser[0]
        do {
            let target = try call("Target.createTarget", ["url": url], timeout: 20)
            guard let targetId = target["targetId"] as? String else { throw Failure(description: "no targetId in \(target)") }
            let attached = try call("Target.attachToTarget", ["targetId": targetId, "flatten": true], timeout: 10)
            session = attached["sessionId"] as? String
            guard session != nil else { throw Failure(description: "no sessionId in \(attached)") }
        } catch {
            quit()
            throw error
        }
    }

    deinit { quit() }

    /// The value of JavaScript `expression` in the page (a string, number or null).
    func evaluate(_ expression: String, timeout: Double = 10) throws -> Any? {
        let answer = try call("Runtime.evaluate", ["expression": expression, "returnByValue": true], timeout: timeout)
        if let exception = answer["exceptionDetails"] { throw Failure(description: "script failed: \(exception)") }
        return (answer["result"] as? [String: Any])?["value"]
    }

    /// Evaluates `expression` every 100 ms until `done` accepts its value; returns that value,
    /// or throws after `timeout` seconds (naming the last value seen).
    func waitFor(_ expression: String, timeout: Double, _ done: (Any?) -> Bool) throws -> Any? {
        let deadline = Date().addingTimeInterval(timeout)
        var last: Any?
        while Date() < deadline {
            last = try evaluate(expression)
            if done(last) { return last }
            usleep(100_000)
        }
        let page = (try? evaluate("document.body.innerText")) as? String ?? "?"
        throw Failure(description: "not seen within \(timeout) s: \(expression); last value: \(String(describing: last).prefix(2_000)); "
                      + "the page reads: \(page.prefix(2_000))")
    }

    /// Ends the browser and every process of its group, and reaps it.
    func quit() {
        guard !closed else { return }
        closed = true
        Glibc.close(commands)
        Glibc.close(answers)
        kill(-pid, SIGKILL)
        kill(pid, SIGKILL)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
    }

    /// Sends one command and waits (at most `timeout` seconds) for its answer's `result`.
    private func call(_ method: String, _ params: [String: Any], timeout: Double) throws -> [String: Any] {
        nextId += 1
        let id = nextId
        var message: [String: Any] = ["id": id, "method": method, "params": params]
        if let session, !method.hasPrefix("Target.") { message["sessionId"] = session }
        var bytes = [UInt8](try JSONSerialization.data(withJSONObject: message))
        bytes.append(0)
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { write(commands, $0.baseAddress, $0.count) }
            guard n > 0 else { throw Failure(description: "the browser's pipe closed") }
            written += n
        }
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            while let end = buffer.firstIndex(of: 0) {
                let frame = Data(buffer[..<end])
                buffer.removeSubrange(...end)
                guard let object = try? JSONSerialization.jsonObject(with: frame) as? [String: Any],
                      object["id"] as? Int == id else { continue }
                if let error = object["error"] { throw Failure(description: "\(method): \(error)") }
                return object["result"] as? [String: Any] ?? [:]
            }
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { throw Failure(description: "\(method): no answer within \(timeout) s") }
            var poller = pollfd(fd: answers, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, Int32(min(left, 1) * 1000) + 1) >= 0 else { continue }
            guard poller.revents != 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 65_536)
            let n = chunk.withUnsafeMutableBytes { read(answers, $0.baseAddress, $0.count) }
            guard n > 0 else { throw Failure(description: "the browser ended (\(method))") }
            buffer += chunk[..<n]
            guard buffer.count < 64 << 20 else { throw Failure(description: "the browser sent more than 64 MiB unasked") }
        }
    }
}
