import Crypto

/// The TLS 1.3 external PSK a token gives (token mode): HKDF-SHA256 over the token with a
/// context label, so the key is used for nothing else and the token never crosses the wire.
/// The PSK identity names which key, never the key: `task:ID` for a task's credential (the
/// scheduler derives it), else a fingerprint of the token (so a scheduler that accepts
/// several tokens can tell which one a peer holds).
extension ClusterToken {
    /// Bytes of a PSK (the hash length of TLS_AES_128_GCM_SHA256).
    public static let pskLength = 32

    /// The PSK for this token.
    public var tlsPSK: [UInt8] {
        derivedKey(salt: "swarm-tls-psk-salt", info: "swarm tls 1.3 external psk v1", bytes: Self.pskLength)
    }

    /// A key of `bytes` bytes derived from the token by HKDF-SHA256 under `salt` and `info`:
    /// each use (the TLS PSK, sealed secrets) has its own label, so no key serves two purposes.
    public func derivedKey(salt: String, info: String, bytes: Int) -> [UInt8] {
        let key = HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: Array(text.utf8)),
                                         salt: Array(salt.utf8), info: Array(info.utf8),
                                         outputByteCount: bytes)
        return key.withUnsafeBytes { Array($0) }
    }

    /// The identity under which this token's PSK is offered.
    public var pskFingerprint: String {
        let digest = SHA256.hash(data: Array("swarm-tls-psk-id|".utf8) + Array(text.utf8))
        return "tok:" + Hex.lower(digest.prefix(12))
    }

    /// What a peer of this role and name offers: its task's identity for `task:ID` clients
    /// (whose token is the task's credential), else the token's fingerprint.
    public func pskIdentity(role: PeerRole, name: String) -> String {
        if role == .client, name.hasPrefix(Self.taskNamePrefix) { return name }
        return pskFingerprint
    }

    /// The scheduler's side: the PSK for an identity a peer offered, or nil (unknown: the
    /// handshake fails). `task:ID` gets that task's credential's PSK.
    public func serverPSK(identity: String) -> [UInt8]? {
        if identity.hasPrefix(Self.taskNamePrefix) {
            let id = identity.dropFirst(Self.taskNamePrefix.count)
            guard !id.isEmpty, id.utf8.count <= 256 else { return nil }
            return ClusterToken(taskCredential(for: String(id))).tlsPSK
        }
        return identity == pskFingerprint ? tlsPSK : nil
    }
}
