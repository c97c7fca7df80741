import Foundation
import SwarmClient
import SwarmProtocol
#if canImport(Glibc)
import Glibc
#endif

/// The live progress line of a wait on a terminal (issue 15 item 3): the shell around the
/// pure `WaitProgress`. While the wait's request is outstanding, every `tickMs` (the client's
/// `whileWaiting`) it picks up the answer to its last `states` (or, for a tree, `listTree`)
/// request sent aside on the same connection, sends the next one once a second, and redraws
/// one line on stderr (`\r`, the line, erase to its end). `finish()` erases it, so what the
/// command prints next starts on a clean line. Only when stderr is a terminal (not `dumb`)
/// and the command does not print JSON: nothing extra otherwise.
final class ProgressDisplay {
    static let askEveryMs: Int64 = 1_000

    enum Subject { case ids([String]), tree(String) }

    private let client: SwarmClient
    private let subject: Subject
    private var progress: WaitProgress
    private let previous: (() -> Void)?
    private var outstanding: (requestId: Int, asked: [String])?
    private var lastAskMs: Int64?
    private var shown = false
    private var lastLine = ""

    /// A display attached to `client`, or nil when there should be none.
    static func start(_ client: SwarmClient, _ subject: Subject, json: Bool) -> ProgressDisplay? {
        guard !json, isatty(STDERR_FILENO) == 1, ProcessInfo.processInfo.environment["TERM"] != "dumb" else { return nil }
        // A scheduler older than `states` would end the wait's connection on the first ask.
        // (A failure to connect is the wait's own to report.)
        if case .ids = subject {
            guard (try? client.connect()) != nil, client.serverFeatures.contains("states") else { return nil }
        }
        return ProgressDisplay(client, subject)
    }

    private init(_ client: SwarmClient, _ subject: Subject) {
        self.client = client
        self.subject = subject
        let now = monotonicMillis()
        switch subject {
        case .ids(let ids): progress = WaitProgress(ids: ids, nowMs: now)
        case .tree(let id): progress = WaitProgress(treeOf: id, nowMs: now)
        }
        previous = client.whileWaiting
        client.whileWaiting = { [weak self] in
            self?.previous?()
            self?.tick()
        }
    }

    private func tick() {
        let now = monotonicMillis()
        if let asked = outstanding, let reply = client.takeReply(asked.requestId) {
            outstanding = nil
            switch reply {
            case .taskStates(let answer): progress.apply(asked: asked.asked, states: answer.states, nowMs: now)
            case .taskTree(let page): progress.applyTree(total: page.total, pendingCount: page.pendingCount, nowMs: now)
            default: break  // an error (an older scheduler): the line just stops moving
            }
        }
        if outstanding == nil && lastAskMs.map({ now - $0 >= Self.askEveryMs }) ?? true { ask(now) }
        draw(now)
    }

    private func ask(_ now: Int64) {
        lastAskMs = now
        switch subject {
        case .ids:
            let ids = progress.query(limit: WaitSummary.maxIds)
            guard !ids.isEmpty, let id = client.sendAside({ .states(.init(requestId: $0, ids: ids)) }) else { return }
            outstanding = (id, ids)
        case .tree(let root):
            guard let id = client.sendAside({ .listTree(.init(requestId: $0, id: root, limit: 1)) }) else { return }
            outstanding = (id, [])
        }
    }

    private func draw(_ now: Int64) {
        let line = progress.line(nowMs: now)
        guard line != lastLine || !shown else { return }
        Console.write("\r\u{1B}[K" + line, to: 2)
        lastLine = line
        shown = true
    }

    /// Erases the line and detaches from the client (call before printing the outcome).
    func finish() {
        client.whileWaiting = previous
        if shown { Console.write("\r\u{1B}[K", to: 2) }
        shown = false
    }
}

extension SwarmClient {
    /// `wait(ids)` with the progress line when it should be shown.
    func waitShowingProgress(_ ids: [String], json: Bool, timeoutSeconds: Double? = nil) throws(ClientError) -> [TaskInfo] {
        let display = ProgressDisplay.start(self, .ids(ids), json: json)
        defer { display?.finish() }
        return try wait(ids, timeoutSeconds: timeoutSeconds)
    }

    /// `waitTree(id)` with the progress line when it should be shown.
    func waitTreeShowingProgress(_ id: String, json: Bool, timeoutSeconds: Double? = nil) throws(ClientError) -> [TaskInfo] {
        let display = ProgressDisplay.start(self, .tree(id), json: json)
        defer { display?.finish() }
        return try waitTree(id, timeoutSeconds: timeoutSeconds)
    }
}
