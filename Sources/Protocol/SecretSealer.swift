import Crypto
import Foundation

/// Seals the values of a task's `secretEnv` for the scheduler's memory and `swarm.db`
/// (issue 16 item 3): AES-256-GCM under a key derived from the cluster token with HKDF-SHA256
/// and its own label, so the key is never the token itself nor any other key derived from it.
/// Each value gets a fresh random nonce; the variable's name is authenticated with it, so a
/// sealed value cannot be moved to another name. A sealed value is
/// `swarm-sealed:v1:` + base64(nonce 12 bytes | ciphertext | tag 16 bytes).
public struct SecretSealer: Sendable {
    public static let prefix = "swarm-sealed:v1:"
    /// What sealing adds to a value's bytes before base64: nonce and tag.
    static let overhead = 12 + 16
    /// The derived key's bytes (`SymmetricKey` is not `Sendable`).
    private let keyBytes: [UInt8]
    private var key: SymmetricKey { SymmetricKey(data: keyBytes) }

    public init(token: ClusterToken) {
        keyBytes = token.derivedKey(salt: "swarm-secret-env", info: "swarm secretEnv v1 AES-256-GCM", bytes: 32)
    }

    /// `value` sealed for variable `name`.
    public func seal(_ value: String, name: String) -> String {
        // AES-GCM with a random 96-bit nonce and a 32-byte key cannot fail.
        let box = try! AES.GCM.seal(Array(value.utf8), using: key, authenticating: Array(name.utf8))
        return Self.prefix + box.combined!.base64EncodedString()
    }

    /// The value sealed for `name`, or nil when `sealed` is not one this key sealed for that
    /// name (another cluster token, another name, damaged).
    public func open(_ sealed: String, name: String) -> String? {
        guard sealed.hasPrefix(Self.prefix),
              let bytes = Data(base64Encoded: String(sealed.dropFirst(Self.prefix.count))),
              let box = try? AES.GCM.SealedBox(combined: bytes),
              let plain = try? AES.GCM.open(box, using: key, authenticating: Array(name.utf8)) else { return nil }
        return String(decoding: plain, as: UTF8.self)
    }

    /// Every value of `secrets` sealed.
    public func seal(_ secrets: [String: String]) -> [String: String] {
        var sealed: [String: String] = [:]
        for (name, value) in secrets { sealed[name] = seal(value, name: name) }
        return sealed
    }

    /// Every value of `secrets` opened, or the name of the first that cannot be.
    public func open(_ secrets: [String: String]) -> Result<[String: String], SecretOpenFailure> {
        var opened: [String: String] = [:]
        for (name, value) in secrets.sorted(by: { $0.key < $1.key }) {
            guard let plain = open(value, name: name) else { return .failure(SecretOpenFailure(name: name)) }
            opened[name] = plain
        }
        return .success(opened)
    }

    /// The bytes of the value a sealed text holds (from its length alone), or the text's own
    /// bytes when it is not sealed: what exec will take for it.
    public static func plainBytes(_ text: String) -> Int {
        guard text.hasPrefix(prefix) else { return text.utf8.count }
        let encoded = text.utf8.count - prefix.utf8.count
        let padding = text.hasSuffix("==") ? 2 : text.hasSuffix("=") ? 1 : 0
        return max(0, encoded / 4 * 3 - padding - overhead)
    }

    /// The length of `bytes` bytes sealed.
    public static func sealedBytes(_ bytes: Int) -> Int { prefix.utf8.count + (bytes + overhead + 2) / 3 * 4 }
}

/// A sealed secret that this scheduler's key does not open (the cluster token changed since
/// it was submitted, or its row was damaged).
public struct SecretOpenFailure: Error, Equatable, Sendable {
    public var name: String
    public init(name: String) { self.name = name }
}
