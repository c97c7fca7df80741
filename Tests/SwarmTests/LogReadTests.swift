import Foundation
import Testing
@testable import SwarmClient
@testable import SwarmNode
@testable import SwarmProtocol
@testable import SwarmScheduler

/// Issue 10 item 22, pure parts: the log file read back (`TaskLogLine`), the worker's chunked
/// reads (`LogFileReader`), the limits of `readLog`/`logData`, the scheduler's relay
/// (`LogRelays`), what the CLI prints (`LogView`) and `submit --wait`'s exit status.
@Suite struct LogReadTests {
    static func tempPath(_ name: String) -> String {
        NSTemporaryDirectory() + "logread-\(getpid())-\(UInt32.random(in: 0...UInt32.max))-\(name)"
    }

    // MARK: TaskLogLine

    @Test func linesTheWorkerWritesParseBackExactly() throws {
        let path = Self.tempPath("log")
        defer { unlink(path) }
        let log = try TaskLog(path: path)
        log.lifecycle("started pid 7: sh -c x", at: 1_795_000_000_123)
        Array("out  with  spaces\n\nerr\n".utf8).withUnsafeBytes { log.output(.stdout, $0, at: 1_795_000_000_200) }
        Array("boom €\n".utf8).withUnsafeBytes { log.output(.stderr, $0, at: 1_795_000_000_201) }
        log.lifecycle("result: failed", at: 1_795_000_000_300)
        log.close()
        let parsed = TaskLogLine.parseAll(try String(contentsOfFile: path, encoding: .utf8))
        #expect(parsed.map { $0.parsed?.kind } == [.lifecycle, .stdout, .stdout, .stdout, .stderr, .lifecycle])
        #expect(parsed.map { $0.parsed.map { String($0.text) } } == ["started pid 7: sh -c x", "out  with  spaces", "", "err", "boom €", "result: failed"])
        #expect(parsed[0].parsed?.timestamp == "2026-11-18T11:06:40.123Z")
    }

    @Test(arguments: [
        "", "short", "2026-11-18T11:06:40.123Z stdout",  // no text separator
        "2026-11-18T11:06:40.123Z stdoutx text", "2026-11-18T11:06:40.123Z STDOUT text",
        "2026-11-18 11:06:40.123Z stdout text", "2026-11-18T11:06:40.12xZ stdout text",
        "2026-11-18T11:06:40.123Z swarm text", "[stderr] not a log line at all, but long enough",
    ])
    func linesNotInTheFormatAreNil(_ line: String) {
        #expect(TaskLogLine.parse(Substring(line)) == nil)
    }

    @Test func theTextStartsAfterThePrefixEvenWhenEmpty() {
        let line = TaskLogLine.parse("2026-11-18T11:06:40.123Z stderr ")
        #expect(line?.kind == .stderr)
        #expect(line?.text == "")
    }

    // MARK: LogFileReader

    @Test func fullReadsAreCutAfterTheirLastNewlineShortReadsAreTheEnd() {
        #expect(LogFileReader.cut(Array("ab\ncd\nef".utf8), asked: 8) == (6, false))
        #expect(LogFileReader.cut(Array("ab\ncd".utf8), asked: 8) == (5, true))
        #expect(LogFileReader.cut([], asked: 8) == (0, true))
        // No newline at all in a full chunk: whole UTF-8 characters only, and always progress.
        let euro = Array("€".utf8)  // E2 82 AC
        #expect(LogFileReader.cut(Array("abcde".utf8) + euro.prefix(1), asked: 6) == (5, false))
        #expect(LogFileReader.cut(Array("abcd".utf8) + euro.prefix(2), asked: 6) == (4, false))
        #expect(LogFileReader.cut(Array("abc".utf8) + euro, asked: 6) == (6, false))
        #expect(LogFileReader.cut(Array(euro.prefix(2)), asked: 2) == (2, false))
    }

    @Test func answersWalkAFileInBoundedChunksOfWholeLines() throws {
        let dir = Self.tempPath("logs")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let text = (1...2000).map { "line \($0)\n" }.joined()
        try text.write(toFile: "\(dir)/t1.stream.txt", atomically: true, encoding: .utf8)
        var offset = 0
        var read = ""
        var chunks = 0
        while chunks < 1000 {
            chunks += 1
            let data = LogFileReader.answer(.init(readId: 1, id: "t1", offset: offset, maxBytes: 1000), logsDir: dir)
            #expect(data.problem == nil)
            #expect(data.validationProblem() == nil)
            #expect(data.nextOffset - data.offset <= 1000)
            #expect(data.eof || data.data.hasSuffix("\n"))
            read += data.data
            offset = data.nextOffset
            if data.eof { break }
        }
        #expect(read == text)
        #expect(chunks > text.utf8.count / 1000)
    }

    @Test func idsWithPathCharactersAndOddFilesNeverGetRead() throws {
        let dir = Self.tempPath("logs")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "secret\n".write(toFile: "\(dir)/../x.stream.txt", atomically: true, encoding: .utf8)
        defer { unlink("\(dir)/../x.stream.txt") }
        for id in ["../x", "/etc/passwd", "a/b", "..", "", String(repeating: "a", count: 129)] {
            let data = LogFileReader.answer(.init(readId: 1, id: id, offset: 0, maxBytes: 100), logsDir: dir)
            #expect(data.problem?.hasPrefix("refused:") == true, "id \(id)")
            #expect(data.data.isEmpty)
        }
        for (offset, maxBytes) in [(-1, 10), (0, 0), (0, LogRead.maxChunkBytes + 1), (LogRead.maxOffset + 1, 10)] {
            let data = LogFileReader.answer(.init(readId: 1, id: "t", offset: offset, maxBytes: maxBytes), logsDir: dir)
            #expect(data.problem?.hasPrefix("refused:") == true)
        }
        // A symbolic link or a FIFO in the logs directory is not followed or waited on.
        symlink("/etc/passwd", "\(dir)/link.stream.txt")
        #expect(LogFileReader.answer(.init(readId: 1, id: "link", offset: 0, maxBytes: 100), logsDir: dir).problem != nil)
        mkfifo("\(dir)/fifo.stream.txt", 0o644)
        #expect(LogFileReader.answer(.init(readId: 1, id: "fifo", offset: 0, maxBytes: 100), logsDir: dir).problem != nil)
        #expect(LogFileReader.answer(.init(readId: 1, id: "missing", offset: 0, maxBytes: 100), logsDir: dir).problem?
            .contains("No such file") == true)
    }

    /// A run that printed nothing has no log file (`TaskLog`'s deferred mode): when the worker
    /// has that run, the missing file is an empty log, not a problem; when it does not (its
    /// files removed, or never here), it is still one.
    @Test func aMissingFileIsAnEmptyLogOnlyForARunTheWorkerHas() throws {
        let dir = Self.tempPath("logs")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let quiet = LogFileReader.answer(.init(readId: 3, id: "quiet", offset: 0, maxBytes: 100), logsDir: dir, ranHere: true)
        #expect(quiet.problem == nil && quiet.eof && quiet.data.isEmpty && quiet.nextOffset == 0)
        #expect(quiet.validationProblem() == nil)
        let gone = LogFileReader.answer(.init(readId: 3, id: "quiet", offset: 0, maxBytes: 100), logsDir: dir, ranHere: false)
        #expect(gone.problem?.contains("No such file") == true)
        // Anything else wrong with the file is a problem whether the run is here or not.
        symlink("/etc/passwd", "\(dir)/link.stream.txt")
        #expect(LogFileReader.answer(.init(readId: 1, id: "link", offset: 0, maxBytes: 100), logsDir: dir, ranHere: true).problem != nil)
    }

    // MARK: readLog / logData limits

    @Test func everyNumberOfALogReadIsBounded() {
        #expect(Message.ReadLog(readId: 1, id: "a", offset: 0, maxBytes: 1).problem() == nil)
        #expect(Message.ReadLog(readId: LogRead.maxReadId, id: "a", offset: LogRead.maxOffset, maxBytes: LogRead.maxChunkBytes).problem() == nil)
        #expect(Message.ReadLog(readId: 0, id: "a", offset: 0, maxBytes: 1).problem() != nil)
        #expect(Message.ReadLog(readId: Int.max, id: "a", offset: 0, maxBytes: 1).problem() != nil)
        #expect(Message.ReadLog(readId: 1, id: "a", offset: Int.min, maxBytes: 1).problem() != nil)
        #expect(Message.ReadLog(readId: 1, id: "a", offset: 0, maxBytes: Int.max).problem() != nil)
        #expect(Message.ReadLog(readId: 1, id: "a/b", offset: 0, maxBytes: 1).problem() != nil)
        func data(_ offset: Int, _ next: Int, _ text: String = "") -> Message.LogData {
            Message.LogData(readId: 1, id: "a", offset: offset, nextOffset: next, data: text, eof: false)
        }
        #expect(data(0, LogRead.maxChunkBytes).validationProblem() == nil)
        #expect(data(5, 4).validationProblem() != nil)
        #expect(data(0, LogRead.maxChunkBytes + 1).validationProblem() != nil)
        #expect(data(Int.max - 1, Int.max).validationProblem() != nil)
        #expect(data(0, 1, String(repeating: "x", count: LogRead.maxDataUTF8 + 1)).validationProblem() != nil)
    }

    /// Fix1 defect 1: a chunk's text is bounded by the bytes of the file it covers, so a
    /// worker advancing one byte a read cannot relay megabytes each time.
    @Test func aChunksTextIsBoundedByTheBytesItCovers() throws {
        func data(_ offset: Int, _ next: Int, _ text: String) -> Message.LogData {
            Message.LogData(readId: 1, id: "t", offset: offset, nextOffset: next, data: text, eof: false)
        }
        // Every invalid byte as U+FFFD: 3 bytes of text per byte of file, the most honest text.
        #expect(data(0, 4, String(repeating: "\u{FFFD}", count: 4)).validationProblem() == nil)
        #expect(data(0, 1, String(repeating: "x", count: LogRead.maxData(covering: 1))).validationProblem() == nil)
        #expect(data(0, 1, String(repeating: "x", count: LogRead.maxData(covering: 1) + 1)).validationProblem() != nil)
        #expect(data(0, 1, String(repeating: "x", count: 3_000_000)).validationProblem() != nil)
        var relays = Relays()
        _ = try relays.start(client: "c", requestId: 1, taskId: "t", node: "w1", nowMs: 0)
        guard case .finish(_, _, _, .unavailable(let why))? = relays.received(data(0, 1, String(repeating: "x", count: 3_000_000)), from: "w1").first else {
            Issue.record("a chunk with far more text than bytes must end the relay"); return
        }
        #expect(why.contains("invalid log chunk"))
        #expect(relays.relays.isEmpty)
    }

    @Test func anUnfinishedLineIsPrintedOnceItPassesTheCap() {
        var view = LogView()
        var printed = 0
        for _ in 0..<10 {
            printed += view.feed(Self.logChunk(String(repeating: "x", count: 30_000), stream: nil)).map { $0.1.utf8.count }.reduce(0, +)
        }
        #expect(printed >= 300_000 - LogView.maxPartialUTF8)
        printed += view.finish().map { $0.1.utf8.count }.reduce(0, +)
        #expect(printed >= 300_000)
    }

    // MARK: LogRelays

    typealias Relays = LogRelays<String>

    static func chunk(_ readId: Int, _ offset: Int, _ text: String, eof: Bool = false) -> Message.LogData {
        Message.LogData(readId: readId, id: "t", offset: offset, nextOffset: offset + text.utf8.count, data: text, eof: eof)
    }

    @Test func aRelayAsksForOneChunkAtATimeAndOnlyWhenTheClientHasRoom() throws {
        var relays = Relays()
        let start = try relays.start(client: "c", requestId: 7, taskId: "t", node: "w1", nowMs: 0)
        #expect(start == [.read(node: "w1", .init(readId: 1, id: "t", offset: 0, maxBytes: LogRead.maxChunkBytes))])
        // Nothing more is asked while the first read is out.
        #expect(relays.clientReady("c", nowMs: 0) == [])
        #expect(relays.received(Self.chunk(1, 0, "a\nb\n"), from: "w1") == [.chunk(client: "c", requestId: 7, taskId: "t", data: "a\nb\n")])
        // The chunk went to the client: the next read waits for room there (a client that
        // stops reading stops the reads).
        #expect(relays.relays[1]?.reading == false)
        #expect(relays.clientReady("other", nowMs: 0) == [])
        #expect(relays.clientReady("c", nowMs: 0) == [.read(node: "w1", .init(readId: 1, id: "t", offset: 4, maxBytes: LogRead.maxChunkBytes))])
        #expect(relays.clientReady("c", nowMs: 0) == [])
        #expect(relays.received(Self.chunk(1, 4, "c\n", eof: true), from: "w1") == [
            .chunk(client: "c", requestId: 7, taskId: "t", data: "c\n"),
            .finish(client: "c", requestId: 7, taskId: "t", end: .complete),
        ])
        #expect(relays.relays.isEmpty)
    }

    @Test func relaysPerClientAndPerWorkerAreCapped() throws {
        var limits = Relays.Limits()
        limits.perClient = 2
        limits.perWorker = 3
        var relays = Relays(limits: limits)
        _ = try relays.start(client: "a", requestId: 1, taskId: "t", node: "w1", nowMs: 0)
        _ = try relays.start(client: "a", requestId: 2, taskId: "t", node: "w1", nowMs: 0)
        #expect(throws: Relays.Refusal.clientBusy(limit: 2)) { try relays.start(client: "a", requestId: 3, taskId: "t", node: "w2", nowMs: 0) }
        _ = try relays.start(client: "b", requestId: 1, taskId: "t", node: "w1", nowMs: 0)
        #expect(throws: Relays.Refusal.workerBusy(node: "w1", limit: 3)) { try relays.start(client: "c", requestId: 1, taskId: "t", node: "w1", nowMs: 0) }
        _ = try relays.start(client: "c", requestId: 1, taskId: "t", node: "w2", nowMs: 0)
        // A client leaving frees its places.
        relays.clientGone("a")
        _ = try relays.start(client: "c", requestId: 2, taskId: "t", node: "w1", nowMs: 0)
    }

    @Test func wrongOrLateAnswersNeverReachAClient() throws {
        var relays = Relays()
        _ = try relays.start(client: "c", requestId: 1, taskId: "t", node: "w1", nowMs: 0)
        // Another worker, an unknown read id: ignored.
        #expect(relays.received(Self.chunk(1, 0, "x\n"), from: "w2") == [])
        #expect(relays.received(Self.chunk(9, 0, "x\n"), from: "w1") == [])
        // Not the chunk asked for: the relay ends (nothing came yet: the scheduler's copy).
        guard case .finish(_, _, _, .unavailable(let why))? = relays.received(Self.chunk(1, 3, "x\n"), from: "w1").first else {
            Issue.record("a chunk at the wrong offset must end the relay"); return
        }
        #expect(why.contains("invalid log chunk"))
        // A client gone: the answer to its read in flight is dropped.
        _ = try relays.start(client: "d", requestId: 1, taskId: "t", node: "w1", nowMs: 0)
        relays.clientGone("d")
        #expect(relays.received(Self.chunk(2, 0, "x\n"), from: "w1") == [])
    }

    @Test func aWorkerThatCannotSendEndsTheRelayWithWhy() throws {
        var relays = Relays()
        _ = try relays.start(client: "c", requestId: 1, taskId: "t", node: "w1", nowMs: 0)
        var missing = Self.chunk(1, 0, "")
        missing.problem = "no such file"
        missing.eof = true
        #expect(relays.received(missing, from: "w1") == [.finish(client: "c", requestId: 1, taskId: "t", end: .unavailable("worker w1: no such file"))])
        // Gone halfway: what was relayed stays, the rest is said to be unavailable.
        _ = try relays.start(client: "c", requestId: 2, taskId: "t", node: "w1", nowMs: 0)
        _ = relays.received(Self.chunk(2, 0, "a\n"), from: "w1")
        _ = try relays.start(client: "e", requestId: 3, taskId: "t", node: "w1", nowMs: 0)
        #expect(relays.workerGone("w1") == [
            .finish(client: "c", requestId: 2, taskId: "t", end: .cutShort("worker w1 disconnected")),
            .finish(client: "e", requestId: 3, taskId: "t", end: .unavailable("worker w1 disconnected")),
        ])
        #expect(relays.relays.isEmpty)
    }

    /// Fix1 defect 2: a worker that stays connected but never answers a read: the read ends
    /// after `readTimeoutMs` with the scheduler's copy and a reason naming the worker.
    @Test func aReadLeftUnansweredEndsAtItsDeadline() throws {
        var relays = Relays()
        let timeout = relays.limits.readTimeoutMs
        _ = try relays.start(client: "c", requestId: 1, taskId: "t", node: "w1", nowMs: 1_000)
        #expect(relays.expire(nowMs: 1_000 + timeout - 1) == [])
        #expect(relays.expire(nowMs: 1_000 + timeout) == [
            .finish(client: "c", requestId: 1, taskId: "t", end: .unavailable("worker w1 did not answer a log read within 10 s")),
        ])
        #expect(relays.relays.isEmpty)
        // Its late answer reaches nobody.
        #expect(relays.received(Self.chunk(1, 0, "x\n"), from: "w1") == [])
        // Each read has its own deadline, counted from when it was asked; a relay waiting for
        // its client (no read out) never expires.
        _ = try relays.start(client: "c", requestId: 2, taskId: "t", node: "w1", nowMs: 50_000)
        _ = relays.received(Self.chunk(2, 0, "a\n"), from: "w1")
        #expect(relays.expire(nowMs: 50_000 + 5 * timeout) == [])
        #expect(relays.clientReady("c", nowMs: 100_000).count == 1)
        #expect(relays.expire(nowMs: 100_000 + timeout - 1) == [])
        guard case .finish(_, 2, _, .cutShort(let why))? = relays.expire(nowMs: 100_000 + timeout).first else {
            Issue.record("a read unanswered after a chunk must end the relay cut short"); return
        }
        #expect(why.contains("w1"))
    }

    // MARK: LogView

    static func logLines(_ lines: [(String, String)]) -> String {
        lines.map { "2026-11-18T11:06:40.123Z \($0.0) \($0.1)\n" }.joined()
    }

    static func render(_ options: LogView.Options, _ chunks: [Message.LogChunk]) -> (out: String, err: String) {
        var view = LogView(options: options)
        var out = "", err = ""
        for piece in chunks.flatMap({ view.feed($0) }) + view.finish() {
            if piece.0 == .stdout { out += piece.1 } else { err += piece.1 }
        }
        return (out, err)
    }

    static func logChunk(_ data: String, stream: String? = LogChunkStream.log, done: Bool = false, notice: String? = nil) -> Message.LogChunk {
        Message.LogChunk(requestId: 1, id: "t", data: data, done: done, stream: stream, notice: notice)
    }

    @Test func logFileLinesShowOutputAndLifecycleOnlyWhenAsked() {
        let file = Self.logLines([("swarm ", "started pid 1: x"), ("stdout", "one"), ("stderr", "two"), ("swarm ", "result: failed")])
        // Split across chunks mid-line: lines come out whole.
        let cut = file.utf8.count / 2
        let chunks = [Self.logChunk(String(file.prefix(cut))), Self.logChunk(String(file.dropFirst(cut))), Self.logChunk("", stream: nil, done: true)]
        #expect(Self.render(.init(), chunks) == ("one\n[stderr] two\n", ""))
        #expect(Self.render(.init(lifecycle: true), chunks).out
            == "[swarm] 2026-11-18T11:06:40.123Z started pid 1: x\none\n[stderr] two\n[swarm] 2026-11-18T11:06:40.123Z result: failed\n")
        #expect(Self.render(.init(splitStreams: true), chunks) == ("one\n", "two\n"))
        // A log cut at its size cap says so, lifecycle or not.
        let truncated = Self.logLines([("stdout", "one"), ("swarm ", "log truncated: output beyond 9 bytes is not logged")])
        #expect(Self.render(.init(), [Self.logChunk(truncated)]) == ("one\n", "swarm: log truncated: output beyond 9 bytes is not logged\n"))
    }

    @Test func tailKeepsTheLastLinesOfWhatWasStored() {
        let file = Self.logLines((1...300).map { ("stdout", "line \($0)") } + [("swarm ", "result: succeeded")])
        let chunks = [Self.logChunk(file), Self.logChunk("", stream: nil, done: true)]
        #expect(Self.render(.init(tail: 5), chunks).out == (296...300).map { "line \($0)\n" }.joined())
        #expect(Self.render(.init(tail: 1, lifecycle: true), chunks).out == "[swarm] 2026-11-18T11:06:40.123Z result: succeeded\n")
        #expect(Self.render(.init(tail: 1000), chunks).out.split(separator: "\n").count == 300)
        // Then live pieces come as they are.
        let live = [Self.logChunk("a\nb\nc", stream: nil), Self.logChunk("d\n", stream: "stdout")]
        #expect(Self.render(.init(tail: 2), live).out == "b\ncd\n")
    }

    @Test func theSchedulersCopyAndLivePiecesSplitOrLabelStderr() {
        let copy = Self.logChunk("out\n[stderr] err\nlast", stream: nil, notice: "task t: its full log is no longer available")
        #expect(Self.render(.init(splitStreams: true), [copy]) == ("out\nlast", "swarm: task t: its full log is no longer available\nerr\n"))
        let live = [Self.logChunk("a\nb", stream: "stderr"), Self.logChunk("c\n", stream: "stdout"), Self.logChunk("x\n", stream: "stderr")]
        // Merged: stderr's unfinished "b" ends before stdout's "c" (never glued as "bc").
        #expect(Self.render(.init(), live).out == "[stderr] a\n[stderr] b\nc\n[stderr] x\n")
        #expect(Self.render(.init(splitStreams: true), live) == ("c\n", "a\nbx\n"))
    }

    // MARK: submit --wait's exit status

    @Test func submitWaitExitsWithTheTasksOutcome() {
        func info(_ state: TaskState, exit: Int? = nil, signal: Int? = nil) -> TaskInfo {
            TaskInfo(id: "t", state: state, command: ["x"], exitCode: exit, signal: signal, reason: "why", submittedAt: 1)
        }
        #expect(TaskOutcome.exitStatus(info(.succeeded, exit: 0)) == 0)
        #expect(TaskOutcome.message(info(.succeeded, exit: 0)) == nil)
        #expect(TaskOutcome.exitStatus(info(.failed, exit: 3)) == 3)
        #expect(TaskOutcome.exitStatus(info(.failed, exit: 255)) == 255)
        #expect(TaskOutcome.exitStatus(info(.failed, exit: 256)) == 1)
        #expect(TaskOutcome.exitStatus(info(.failed, signal: 9)) == 137)
        #expect(TaskOutcome.exitStatus(info(.failed)) == 1)
        #expect(TaskOutcome.exitStatus(info(.timedOut, signal: 15)) == 124)
        #expect(TaskOutcome.exitStatus(info(.silenceKilled)) == 124)
        for state in [TaskState.cancelled, .lost, .healthFailed] { #expect(TaskOutcome.exitStatus(info(state)) == 125) }
        #expect(TaskOutcome.exitStatus(info(.spawnFailed)) == 127)
        #expect(TaskOutcome.message(info(.timedOut, signal: 15)) == "task t timed_out: why")
        var bare = info(.failed, exit: 3)
        bare.reason = nil
        #expect(TaskOutcome.message(bare) == "task t failed: exited with code 3")
    }
}
