import Foundation

/// `BenchProgress` for the terminal.
///
/// On a TTY it redraws one line in place (`\r`): the phase, a bar `[#####.....]`,
/// done/total, the percentage, the rate per second and the ETA, at most ten times a second
/// (on a monotonic clock); `end` always replaces the bar with the phase's result on a line
/// of its own. Elsewhere (a pipe, a CI log) it writes one line when a phase begins and one
/// when it ends, and nothing in between. Use it from one thread.
public final class TerminalProgress: BenchProgress {
    /// The shortest time between two redraws of the bar.
    static let redrawInterval = 0.1

    private let isTTY: Bool
    private let columns: Int
    private let write: (String) -> Void
    private let now: () -> Double
    private var phase = ""
    private var total = 0
    private var done = 0
    private var startedAt = 0.0
    private var lastDrawAt: Double?
    private var drawn = false

    /// Progress written through `write`; `columns` is the terminal width (the bar stays
    /// one column short of it so it never wraps).
    public convenience init(isTTY: Bool, columns: Int = 80, write: @escaping (String) -> Void) {
        self.init(isTTY: isTTY, columns: columns, clock: TerminalProgress.monotonicSeconds, write: write)
    }

    /// Progress on standard error: a bar when it is a terminal (as wide as the terminal),
    /// plain lines otherwise.
    public convenience init() {
        self.init(isTTY: isatty(2) == 1, columns: TerminalProgress.terminalColumns(), write: TerminalProgress.writeStandardError)
    }

    /// `clock` returns monotonic seconds (tests pass a fake one).
    init(isTTY: Bool, columns: Int, clock: @escaping () -> Double, write: @escaping (String) -> Void) {
        self.isTTY = isTTY
        self.columns = max(columns, 20)
        self.now = clock
        self.write = write
    }

    /// Starts a phase of `total` steps; ends an unfinished bar line first.
    public func begin(_ phase: String, total: Int) {
        if drawn { write("\n") }
        self.phase = ReportFormat.flatten(phase)
        self.total = max(0, total)
        done = 0
        startedAt = now()
        lastDrawAt = nil
        drawn = false
        if isTTY {
            draw(at: startedAt)
        } else {
            write(self.total > 1 ? "\(self.phase): \(ReportFormat.count(self.total, "task"))\n" : "\(self.phase)\n")
        }
    }

    /// Records progress; redraws the bar when the last redraw is at least 0.1 s old.
    public func update(done: Int) {
        self.done = max(0, done)
        guard isTTY else { return }
        let time = now()
        if let last = lastDrawAt, time - last < Self.redrawInterval { return }
        draw(at: time)
    }

    /// Ends the phase: its result on a line of its own (on a TTY, in place of the bar).
    public func end(_ result: String) {
        let result = ReportFormat.flatten(result)
        let line = phase.isEmpty ? result : "\(phase): \(result)"
        if isTTY {
            write("\r\u{1B}[2K" + line + "\n")
        } else {
            write(line + "\n")
        }
        drawn = false
    }

    private func draw(at time: Double) {
        lastDrawAt = time
        drawn = true
        let line = Self.bar(phase: phase, done: done, total: total, elapsedSeconds: time - startedAt, columns: columns)
        write("\r\u{1B}[2K" + line)
    }

    /// The bar line, at most `columns - 1` characters:
    /// `spawn: swarm run 2/3 [#####.....] 1,000/2,000  50%  1,960/s  ETA 1s`.
    /// The phase is shortened first, then the rate and ETA dropped, when space runs out.
    static func bar(phase: String, done: Int, total: Int, elapsedSeconds: Double, columns: Int) -> String {
        let limit = max(columns - 1, 10)
        let fraction = total > 0 ? min(max(Double(done) / Double(total), 0), 1) : 1
        let percent = Int((fraction * 100).rounded(.down))
        let count = "\(ReportFormat.int(done))/\(ReportFormat.int(total))"
        let rate = elapsedSeconds > 0 && elapsedSeconds.isFinite ? Double(done) / elapsedSeconds : nil
        let rateText = rate.map { "\(ReportFormat.number($0))/s" } ?? "--/s"
        let eta: String
        if total > 0 && done >= total {
            eta = "ETA 0s"
        } else if let rate, rate > 0 {
            eta = "ETA " + clock(Double(total - done) / rate)
        } else {
            eta = "ETA --"
        }
        let percentText = "\(percent)%"
        let tails = ["\(count) \(percentText) \(rateText) \(eta)", "\(count) \(percentText)", percentText]
        let minimumBar = 10
        for tail in tails {
            let room = limit - tail.count - 4  // "[", "]" and two spaces
            guard room >= minimumBar else { continue }
            let phaseText = phase.isEmpty ? "" : ReportFormat.truncate(phase, to: max(0, min(phase.count, room - minimumBar - 1)))
            let barWidth = min(40, room - (phaseText.isEmpty ? 0 : phaseText.count + 1))
            let filled = Int((fraction * Double(barWidth)).rounded(.down))
            let bar = "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: barWidth - filled) + "]"
            let line = (phaseText.isEmpty ? "" : phaseText + " ") + bar + " " + tail
            return ReportFormat.truncate(line, to: limit)
        }
        return ReportFormat.truncate("\(phase) \(percentText)", to: limit)
    }

    /// `42s`, `3m05s`, `1h02m`.
    static func clock(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "--" }
        let total = Int(min(seconds, 359_999).rounded(.up))
        if total < 60 { return "\(total)s" }
        if total < 3600 { return String(format: "%dm%02ds", total / 60, total % 60) }
        return String(format: "%dh%02dm", total / 3600, (total % 3600) / 60)
    }

    static func monotonicSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// The width of the terminal on standard error, else `$COLUMNS`, else 80.
    static func terminalColumns() -> Int {
        #if os(Linux)
        var size = winsize()
        if ioctl(2, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 { return Int(size.ws_col) }
        #endif
        if let text = ProcessInfo.processInfo.environment["COLUMNS"], let value = Int(text), value > 0 { return value }
        return 80
    }

    private static func writeStandardError(_ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { Foundation.write(2, $0.baseAddress, $0.count) }
            if written <= 0 { return }
            bytes = bytes.dropFirst(written)
        }
    }
}
