import CFuzzer
#if canImport(Glibc)
import Glibc
#endif

/// The libFuzzer driver every target's main.swift starts, and how a target reports a broken
/// property: a message on stderr, then `abort()`, which libFuzzer records as a crash (the
/// input goes to `crash-*` in its artifact directory).
public enum Fuzz {
    /// The property check for one input. Set once, before the driver starts; libFuzzer calls
    /// it from one thread at a time (no `-fork`/`-jobs` in scripts/fuzz.sh).
    nonisolated(unsafe) static var body: (UnsafeRawBufferPointer) -> Void = { _ in }

    /// Runs libFuzzer over `body` with the process's arguments (corpus directories, `-max_total_time`
    /// and the like) and exits with its status.
    public static func run(_ body: @escaping (UnsafeRawBufferPointer) -> Void) -> Never {
        Fuzz.body = body
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, LLVMFuzzerTestOneInput))
    }

    /// Stops the run when `condition` is false: `message` names the broken property and what was seen.
    public static func check(_ condition: Bool, _ message: @autoclosure () -> String,
                             file: StaticString = #fileID, line: UInt = #line) {
        if !condition { fail(message(), file: file, line: line) }
    }

    public static func fail(_ message: String, file: StaticString = #fileID, line: UInt = #line) -> Never {
        let text = "FUZZ PROPERTY BROKEN at \(file):\(line): \(message)\n"
        _ = text.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
        abort()
    }
}

/// The entry libFuzzer calls for every input (also what `LLVMFuzzerRunDriver` is given).
@_cdecl("LLVMFuzzerTestOneInput")
public func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    Fuzz.body(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

/// An input read front to back: the first bytes steer the test (split points, choices), the
/// rest is data. Reading past the end gives zeros, so every input is a valid program.
public struct FuzzInput {
    public private(set) var bytes: [UInt8]
    public private(set) var offset = 0

    public init(_ data: UnsafeRawBufferPointer) { bytes = Array(data) }
    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public var isEmpty: Bool { offset >= bytes.count }
    public var remaining: Int { max(0, bytes.count - offset) }

    public mutating func byte() -> UInt8 {
        guard offset < bytes.count else { return 0 }
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func bool() -> Bool { byte() & 1 == 1 }

    public mutating func uint16() -> UInt16 { UInt16(byte()) << 8 | UInt16(byte()) }

    /// Up to `count` bytes (fewer at the end of the input).
    public mutating func take(_ count: Int) -> [UInt8] {
        let end = min(bytes.count, offset + max(0, count))
        defer { offset = max(offset, end) }
        return offset < end ? Array(bytes[offset..<end]) : []
    }

    /// A short string: a length byte (0-31), then that many bytes, decoded as UTF-8 with
    /// repairs (so any bytes give some string, invalid sequences included as U+FFFD).
    public mutating func string() -> String {
        let count = Int(byte() % 32)
        return String(decoding: take(count), as: UTF8.self)
    }

    public mutating func rest() -> [UInt8] { take(remaining) }
}
