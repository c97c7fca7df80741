import CLibUV

/// Implemented by every handle class: called once, from the shared close callback, when libuv
/// is done with the handle. The class releases its memory there and nowhere else.
protocol UVHandleOwner: AnyObject {
    func handleDidClose()
}

/// The memory and close lifecycle that every handle class shares. The raw `uv_*_t` is allocated
/// here; its `data` field holds a retained reference to the owning Swift object, so the object
/// lives exactly until libuv's close callback (a handle that is never closed shows up as a leak
/// when its loop is closed, rather than as a use-after-free).
final class HandleCore<Raw> {
    enum State { case open, closing, closed }

    let raw: UnsafeMutablePointer<Raw>
    unowned let loop: EventLoop
    private(set) var state: State = .open
    private var onClose: [() -> Void] = []

    init(loop: EventLoop, zero: Raw) {
        loop.preconditionInLoop()
        self.loop = loop
        raw = .allocate(capacity: 1)
        raw.initialize(to: zero)
    }

    var handle: UnsafeMutablePointer<uv_handle_t> { swarm_handle(raw) }
    var isOpen: Bool { state == .open }

    /// Binds the owner to the handle after a successful `uv_*_init`: from now on the handle
    /// keeps the owner alive until it is closed.
    func attach(_ owner: UVHandleOwner) {
        handle.pointee.data = Unmanaged.passRetained(owner as AnyObject).toOpaque()
        loop.handleOpened()
    }

    /// Frees memory of a handle whose `uv_*_init` failed (libuv never saw it).
    func discardUninitialized() {
        raw.deinitialize(count: 1)
        raw.deallocate()
        state = .closed
    }

    /// Idempotent: every caller's `onClose` runs once the handle is closed (at once when it
    /// already is).
    func close(_ onClose: (() -> Void)?) {
        loop.preconditionInLoop()
        switch state {
        case .closed:
            onClose?()
        case .closing:
            if let onClose { self.onClose.append(onClose) }
        case .open:
            state = .closing
            if let onClose { self.onClose.append(onClose) }
            uv_close(handle, handleCloseCallback)
        }
    }

    /// Called by the owner from `handleDidClose`.
    func finishClose() {
        state = .closed
        let callbacks = onClose
        onClose = []
        raw.deinitialize(count: 1)
        raw.deallocate()
        loop.handleClosed()
        for callback in callbacks { callback() }
    }

    /// The owner of a handle pointer, for use inside C callbacks.
    static func owner<T: AnyObject>(of handle: UnsafeMutableRawPointer?, as type: T.Type) -> T {
        let h = handle!.assumingMemoryBound(to: uv_handle_t.self)
        return Unmanaged<AnyObject>.fromOpaque(h.pointee.data!).takeUnretainedValue() as! T
    }
}

/// The one close callback for every handle kind: drops the retain taken in `attach`.
private func handleCloseCallback(_ handle: UnsafeMutablePointer<uv_handle_t>?) {
    guard let handle, let data = handle.pointee.data else { return }
    handle.pointee.data = nil
    let owner = Unmanaged<AnyObject>.fromOpaque(data).takeRetainedValue()
    (owner as! UVHandleOwner).handleDidClose()
}
