/// The version of this build, shown by `swarm --version` and logged by the servers at start.
///
/// `release` moves with the project's milestones (one minor step per landed issue set);
/// `protocolVersion` is what peers must agree on at the handshake, so two builds with
/// different releases but the same protocol interoperate.
public enum SwarmVersion {
    public static let release = "0.15.0"

    /// `0.15.0 (protocol N)`: one line, what `--version` prints after `swarm`.
    public static var description: String { "\(release) (protocol \(protocolVersion))" }
}
