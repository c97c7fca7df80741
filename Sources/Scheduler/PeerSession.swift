import SwarmProtocol
import SwarmTransport

/// One accepted connection and what we know of its peer.
final class PeerSession {
    let connection: FramedConnection
    var handshake: ServerHandshake
    var hello: Message.Hello?
    /// Set once a worker has registered.
    var nodeName: String?
    /// Loop time (monotonic ms) of the accept, for the handshake deadline.
    let acceptedAtMs: UInt64
    /// The peer's address without its port: what admission and log budgets are kept by.
    let address: String
    /// Set for a client once its handshake is done.
    var identity: ClientIdentity?
    /// Loop time at which it was dropped for holding too many unread replies (then closed
    /// for good if it does not read them soon).
    var droppedAtMs: UInt64?
    /// The connection's `bytesReceived` at the last tick (`SchedulerServer.tick`): more since
    /// then is a sign of life of its worker even before they make a whole message.
    var bytesAtLastTick = 0

    init(connection: FramedConnection, handshake: ServerHandshake, acceptedAtMs: UInt64, address: String) {
        self.connection = connection
        self.handshake = handshake
        self.acceptedAtMs = acceptedAtMs
        self.address = address
    }
}
