import CLibUV

/// A libuv error code as a value. libuv reports failures as negative errno-style integers;
/// this keeps the code and renders libuv's own name and message for it.
public struct UVError: Error, Equatable, Hashable, CustomStringConvertible, Sendable {
    public let code: Int32

    public init(_ code: Int32) { self.code = code }

    /// libuv's symbolic name, e.g. `ECONNREFUSED`.
    public var name: String { String(cString: uv_err_name(code)) }
    /// libuv's human message, e.g. `connection refused`.
    public var message: String { String(cString: uv_strerror(code)) }
    public var description: String { "\(name): \(message)" }

    public static let eof = UVError(Int32(UV_EOF.rawValue))
    public static let canceled = UVError(Int32(UV_ECANCELED.rawValue))
    public static let closed = UVError(Int32(UV_EPIPE.rawValue))
    public static let busy = UVError(Int32(UV_EBUSY.rawValue))
    public static let invalidArgument = UVError(Int32(UV_EINVAL.rawValue))
    public static let notFound = UVError(Int32(UV_ENOENT.rawValue))

    /// Throws when `rc` is a libuv error code (negative), returns it otherwise.
    @discardableResult
    static func check(_ rc: Int32) throws(UVError) -> Int32 {
        if rc < 0 { throw UVError(rc) }
        return rc
    }
}
