/// The last `capacity` bytes of a task's output (stdout and stderr interleaved as they came).
/// The original coordinator kept the FIRST 50k characters; the end is where errors are.
public struct OutputTail: Sendable {
    public let capacity: Int
    private var ring: [UInt8]
    private var start = 0
    public private(set) var count = 0
    public private(set) var totalBytes = 0

    public init(capacity: Int = 64 * 1024) {
        precondition(capacity > 0)
        self.capacity = capacity
        // Grown as output comes (most tasks print little): not `capacity` zeroed bytes per task.
        ring = []
    }

    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        totalBytes += bytes.count
        // Only the last `capacity` bytes of this chunk can survive.
        var kept = UnsafeRawBufferPointer(rebasing: bytes.suffix(capacity))
        if ring.count < capacity {
            // Until the ring is full it holds the output from its start (start == 0).
            let n = min(kept.count, capacity - ring.count)
            ring.append(contentsOf: UnsafeRawBufferPointer(rebasing: kept[..<n]))
            count = ring.count
            kept = UnsafeRawBufferPointer(rebasing: kept[n...])
            if kept.isEmpty { return }
        }
        var offset = 0
        ring.withUnsafeMutableBytes { ringBytes in
            while offset < kept.count {
                let end = (start + count) % capacity
                let run = min(kept.count - offset, capacity - end)
                ringBytes.baseAddress!.advanced(by: end)
                    .copyMemory(from: kept.baseAddress!.advanced(by: offset), byteCount: run)
                offset += run
                let overflow = max(0, count + run - capacity)
                count = min(capacity, count + run)
                start = (start + overflow) % capacity
            }
        }
    }

    public mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    public var bytes: [UInt8] {
        let first = min(count, capacity - start)
        return Array(ring[start..<(start + first)]) + Array(ring[0..<(count - first)])
    }

    /// As text, from the first whole character: once the ring has dropped earlier output its
    /// first bytes may be the end of a character cut in two (skipped, not shown as U+FFFD).
    public var text: String {
        let all = bytes
        let skip = totalBytes > count ? UTF8Carry.leadingContinuations(all) : 0
        return String(decoding: all[skip...], as: UTF8.self)
    }
}
