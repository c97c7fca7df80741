import CLibUV
#if canImport(Glibc)
import Glibc
#endif

/// A numeric IPv4 or IPv6 socket address.
public struct SocketAddress: CustomStringConvertible, Sendable {
    var storage: sockaddr_storage

    /// Parses a numeric address ("127.0.0.1", "::1"); "localhost" maps to 127.0.0.1.
    public init(host: String, port: Int) throws(UVError) {
        guard (0...65535).contains(port) else { throw UVError.invalidArgument }
        storage = sockaddr_storage()
        let name = host == "localhost" ? "127.0.0.1" : host
        var rc: Int32 = 0
        if name.contains(":") {
            rc = withUnsafeMutableBytes(of: &storage) { raw in
                uv_ip6_addr(name, Int32(port), raw.baseAddress!.assumingMemoryBound(to: sockaddr_in6.self))
            }
        } else {
            rc = withUnsafeMutableBytes(of: &storage) { raw in
                uv_ip4_addr(name, Int32(port), raw.baseAddress!.assumingMemoryBound(to: sockaddr_in.self))
            }
        }
        try UVError.check(rc)
    }

    init(storage: sockaddr_storage) { self.storage = storage }

    public var isIPv6: Bool { Int32(storage.ss_family) == AF_INET6 }

    public var host: String {
        var buf = [CChar](repeating: 0, count: 64)
        var copy = storage
        withUnsafeBytes(of: &copy) { raw in
            if isIPv6 {
                _ = uv_ip6_name(raw.baseAddress!.assumingMemoryBound(to: sockaddr_in6.self), &buf, buf.count)
            } else {
                _ = uv_ip4_name(raw.baseAddress!.assumingMemoryBound(to: sockaddr_in.self), &buf, buf.count)
            }
        }
        return buf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    public var port: Int {
        var copy = storage
        return withUnsafeBytes(of: &copy) { raw in
            if isIPv6 {
                return Int(UInt16(bigEndian: raw.load(as: sockaddr_in6.self).sin6_port))
            }
            return Int(UInt16(bigEndian: raw.load(as: sockaddr_in.self).sin_port))
        }
    }

    /// True for 127.0.0.0/8 and ::1.
    public var isLoopback: Bool {
        if isIPv6 { return host == "::1" }
        return host.hasPrefix("127.")
    }

    public var description: String { isIPv6 ? "[\(host)]:\(port)" : "\(host):\(port)" }

    func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>) -> R) -> R {
        var copy = storage
        return withUnsafeBytes(of: &copy) { body($0.baseAddress!.assumingMemoryBound(to: sockaddr.self)) }
    }
}
