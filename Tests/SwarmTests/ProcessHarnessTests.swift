import Foundation
import Testing

/// The end-to-end harness itself: what a child prints is all read, and its end is seen.
@Suite struct ProcessHarnessTests {
    /// Children that print 256 KiB (four pipe buffers) and exit at once: every one is seen to
    /// end, with every byte. Foundation's `readabilityHandler`, which the harness used before,
    /// now and then lost a pipe's last bytes and its EOF on Linux (swift-corelibs-foundation
    /// issue 3275): `swarm logs -f` in the output flood test looked stalled in 1 run of 12.
    @Test func everyChildsWholeOutputAndItsEndAreSeen() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let size = 256 * 1024
        // Through a launcher: `sh -c SCRIPT` takes the swarm binary and its arguments as $0...
        let script = "head -c \(size) /dev/zero | tr '\\0' x; printf end"
        for index in 0..<20 {
            let child = try harness.start("printer-\(index)", ["version"], launcher: ["/bin/sh", "-c", script])
            let status = child.waitForExit(timeout: 60)
            #expect(status == 0, "child \(index) ended with \(status.map(String.init) ?? "nothing in 60 s")")
            let output = child.stdout
            #expect(output.utf8.count == size + 3 && output.hasSuffix("xend"), "child \(index): \(output.utf8.count) bytes")
        }
    }
}
