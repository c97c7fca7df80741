import Foundation
import Synchronization
import Testing
@testable import SwarmUV

/// The libuv layer on a real loop. Every test ends by closing the loop, which fails if any
/// handle was left open.
@Suite struct UVLayerTests {
    @Test func timerFiresOnceAndRepeats() throws {
        let loop = EventLoop()
        let once = try UVTimer(loop: loop)
        let repeating = try UVTimer(loop: loop)
        var onceCount = 0, repeatCount = 0
        once.start(afterMs: 5) { onceCount += 1 }
        repeating.start(afterMs: 1, repeatMs: 1) { repeatCount += 1 }
        #expect(runLoop(loop) { onceCount == 1 && repeatCount >= 5 })
        once.close()
        repeating.close()
        for _ in 0..<5 { loop.runNoWait() }
        #expect(loop.liveHandles == 2)  // only the loop's own: wake-up and `soon`
        try closeLoopCheckingLeaks(loop)
        #expect(onceCount == 1)
    }

    @Test func closeIsIdempotentAndEveryCallbackRuns() throws {
        let loop = EventLoop()
        let timer = try UVTimer(loop: loop)
        var closed = 0
        timer.close { closed += 1 }
        timer.close { closed += 1 }
        #expect(runLoop(loop) { closed == 2 })
        timer.close { closed += 1 }  // already closed: runs at once
        #expect(closed == 3)
        try closeLoopCheckingLeaks(loop)
    }

    @Test func leakedHandleIsReportedWhenTheLoopCloses() throws {
        let loop = EventLoop()
        let timer = try UVTimer(loop: loop)
        timer.start(afterMs: 100_000) {}
        #expect(throws: LoopCloseError.self) { try loop.close() }
        // Clean up so the loop can actually close.
        timer.close()
        for _ in 0..<5 { loop.runNoWait() }
        try loop.close()
    }

    @Test func tcpEchoOverLoopbackPortZero() throws {
        let loop = EventLoop()
        let server = try UVTCP(loop: loop)
        try server.bind(SocketAddress(host: "127.0.0.1", port: 0))
        var accepted: UVTCP?
        try server.listen { error in
            #expect(error == nil)
            let conn = try! server.accept()
            accepted = conn
            try! conn.stream.startReading { event in
                if case .data(let bytes) = event { conn.stream.write(Array(bytes)) }
            }
        }
        let port = try server.localAddress().port
        #expect(port > 0)

        let client = try UVTCP(loop: loop)
        var connected = false
        client.connect(try SocketAddress(host: "127.0.0.1", port: port)) { error in
            #expect(error == nil)
            connected = true
        }
        #expect(runLoop(loop) { connected })
        var received: [UInt8] = []
        try client.stream.startReading { event in
            if case .data(let bytes) = event { received += Array(bytes) }
        }
        let message = Array("hello over libuv".utf8)
        var written = false
        client.stream.write(message) { error in
            #expect(error == nil)
            written = true
        }
        #expect(runLoop(loop) { written && received == message })
        client.close()
        accepted?.close()
        server.close()
        try closeLoopCheckingLeaks(loop)
    }

    @Test func writeToAClosedPeerIsAnErrorValue() throws {
        let loop = EventLoop()
        let server = try UVTCP(loop: loop)
        try server.bind(SocketAddress(host: "127.0.0.1", port: 0))
        try server.listen { _ in
            // Accept and hang up at once.
            (try? server.accept())?.close()
        }
        let client = try UVTCP(loop: loop)
        var connected = false
        client.connect(try SocketAddress(host: "127.0.0.1", port: try server.localAddress().port)) { _ in connected = true }
        #expect(runLoop(loop) { connected })
        var peerGone = false
        try client.stream.startReading { event in
            if case .data = event { return }
            peerGone = true
        }
        #expect(runLoop(loop) { peerGone })
        var errors: [UVError] = []
        var completions = 0
        for _ in 0..<50 {
            client.stream.write([UInt8](repeating: 7, count: 65_536)) { error in
                completions += 1
                if let error { errors.append(error) }
            }
        }
        #expect(runLoop(loop) { completions == 50 })
        #expect(!errors.isEmpty)  // EPIPE or ECONNRESET, and no SIGPIPE killed us
        client.close()
        server.close()
        try closeLoopCheckingLeaks(loop)
    }

    @Test func aConnectedSocketTakesAUserTimeoutAndAKeepAlive() throws {
        let loop = EventLoop()
        let server = try UVTCP(loop: loop)
        try server.bind(SocketAddress(host: "127.0.0.1", port: 0))
        var accepted: UVTCP?
        try server.listen { _ in accepted = try? server.accept() }
        let client = try UVTCP(loop: loop)
        // No socket before the connect starts: nothing to set.
        #expect(client.setUserTimeout(ms: 2_500) == false && client.userTimeoutMs == nil)
        var connected = false
        client.connect(try SocketAddress(host: "127.0.0.1", port: try server.localAddress().port)) { _ in connected = true }
        #expect(runLoop(loop) { connected && accepted != nil })
        #expect(client.userTimeoutMs == 0)  // the kernel's default
        #expect(client.setUserTimeout(ms: 2_500))
        #expect(client.userTimeoutMs == 2_500)
        // Keepalive (what `swarm logs -f` sets): off by default, then as asked.
        #expect(client.keepAlive == nil)
        #expect(client.setKeepAlive(idleSeconds: 15, intervalSeconds: 5, probes: 3))
        #expect(client.keepAlive.map { [$0.idleSeconds, $0.intervalSeconds, $0.probes] } == [15, 5, 3])
        client.close()
        accepted?.close()
        server.close()
        try closeLoopCheckingLeaks(loop)
    }

    @Test func connectionRefusedIsAnErrorValue() throws {
        let loop = EventLoop()
        // Find a port with nothing on it: bind, read the port, close.
        let probe = try UVTCP(loop: loop)
        try probe.bind(SocketAddress(host: "127.0.0.1", port: 0))
        let port = try probe.localAddress().port
        probe.close()
        let client = try UVTCP(loop: loop)
        var result: UVError??
        client.connect(host: "127.0.0.1", port: port) { result = .some($0) }
        #expect(runLoop(loop) { result != nil })
        #expect(result! != nil)
        client.close()
        try closeLoopCheckingLeaks(loop)
    }

    @Test func processCapturesOutputExitCodeAndLeadsItsGroup() throws {
        let loop = EventLoop()
        let out = try UVPipe(loop: loop)
        let err = try UVPipe(loop: loop)
        var options = SpawnOptions(executable: "sh", arguments: ["-c", "echo out; echo err >&2; sleep 0.2; exit 3"])
        options.stdout = .pipe(out)
        options.stderr = .pipe(err)
        var exit: (Int64, Int32)?
        let process = try UVProcess.spawn(loop: loop, options) { exit = ($0, $1) }
        #expect(process.pid > 0)
        #expect(getpgid(process.pid) == process.pid)  // its own process group
        var stdout: [UInt8] = [], stderr: [UInt8] = []
        var eofs = 0
        try out.stream.startReading { if case .data(let b) = $0 { stdout += Array(b) } else { eofs += 1 } }
        try err.stream.startReading { if case .data(let b) = $0 { stderr += Array(b) } else { eofs += 1 } }
        #expect(runLoop(loop) { exit != nil && eofs == 2 })
        #expect(exit?.0 == 3)
        #expect(exit?.1 == 0)
        #expect(String(decoding: stdout, as: UTF8.self) == "out\n")
        #expect(String(decoding: stderr, as: UTF8.self) == "err\n")
        out.close(); err.close(); process.close()
        try closeLoopCheckingLeaks(loop)
    }

    @Test func groupSignalKillsGrandchildren() throws {
        let loop = EventLoop()
        let out = try UVPipe(loop: loop)
        var options = SpawnOptions(executable: "sh", arguments: ["-c", "sleep 30 & echo $!; wait"])
        options.stdout = .pipe(out)
        var exit: (Int64, Int32)?
        let process = try UVProcess.spawn(loop: loop, options) { exit = ($0, $1) }
        var text = ""
        try out.stream.startReading { if case .data(let b) = $0 { text += String(decoding: Array(b), as: UTF8.self) } }
        #expect(runLoop(loop) { text.hasSuffix("\n") })
        let grandchild = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))!
        #expect(kill(grandchild, 0) == 0)
        try process.signalGroup(SIGKILL)
        #expect(runLoop(loop) { exit != nil })
        #expect(exit?.1 == SIGKILL)
        // The grandchild got the same signal (it may linger as a zombie of PID 1 briefly).
        #expect(runLoop(loop, timeoutMs: 3_000) { processGone(grandchild) })
        out.close(); process.close()
        try closeLoopCheckingLeaks(loop)
    }

    @Test func spawnOfMissingProgramThrowsAndLeaksNothing() throws {
        let loop = EventLoop()
        let out = try UVPipe(loop: loop)
        var options = SpawnOptions(executable: "/nonexistent/program-\(getpid())", arguments: [])
        options.stdout = .pipe(out)
        #expect(throws: UVError.notFound) {
            _ = try UVProcess.spawn(loop: loop, options) { _, _ in }
        }
        out.close()
        try closeLoopCheckingLeaks(loop)
    }

    @Test func executeFromAnotherThreadRunsOnTheLoopThread() throws {
        let loop = EventLoop()
        loop.keepAlive(true)
        let counter = Mutex(0)
        let onLoopThread = Mutex(true)
        let threads = (0..<4).map { _ in
            Thread {
                for _ in 0..<250 {
                    loop.execute {
                        let inLoop = loop.inLoop
                        onLoopThread.withLock { $0 = $0 && inLoop }
                        counter.withLock { $0 += 1 }
                    }
                }
            }
        }
        for t in threads { t.start() }
        #expect(runLoop(loop) { counter.withLock { $0 } == 1000 })
        #expect(onLoopThread.withLock { $0 })
        loop.keepAlive(false)
        try closeLoopCheckingLeaks(loop)
        #expect(loop.execute {} == false)  // a closed loop refuses work
    }

    @Test func signalIsDeliveredOnTheLoop() throws {
        let loop = EventLoop()
        let signal = try UVSignal(loop: loop)
        var got: Int32?
        try signal.start(signal: SIGUSR2) { got = $0 }
        kill(getpid(), SIGUSR2)
        #expect(runLoop(loop) { got != nil })
        #expect(got == SIGUSR2)
        signal.close()
        try closeLoopCheckingLeaks(loop)
    }

    @Test func loopThreadRunsSetupAndEndsWhenShutDown() throws {
        let ran = Mutex(false)
        let thread = EventLoopThread(name: "test") { loop in
            ran.withLock { $0 = loop.inLoop }
        }
        #expect(ran.withLock { $0 })
        thread.shutdown()
        thread.join()
    }
}

/// True when `pid` no longer exists or is a zombie.
func processGone(_ pid: Int32) -> Bool {
    if kill(pid, 0) != 0 { return true }
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = stat.lastIndex(of: ")") else { return true }
    let state = stat[stat.index(close, offsetBy: 2)]
    return state == "Z" || state == "X"
}
