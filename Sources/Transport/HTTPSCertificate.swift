import COpenSSL
import Foundation

/// The certificate an HTTPS listener serves, and its SHA-256 fingerprint (printed at start, so
/// a user can check what a browser shows, or pin it).
public struct HTTPSCertificate: Sendable, Equatable {
    public var cert: String
    public var key: String
    /// SHA-256 of the certificate's DER, as `AB:CD:...` (the form of `openssl x509
    /// -fingerprint -sha256` and of browsers' certificate viewers).
    public var fingerprint: String
    /// Made by this process (or an earlier run of it) rather than given.
    public var selfSigned: Bool
    /// Made just now (its first run): a user must learn its fingerprint anew.
    public var created: Bool

    /// File names of the self-signed pair in its directory.
    public static let selfSignedCertName = "https-cert.pem"
    public static let selfSignedKeyName = "https-key.pem"

    /// What a scheduler or worker prints after its "http listening on" line.
    public var startLine: String {
        let what = selfSigned ? "self-signed certificate \(cert)\(created ? " (made now)" : "")" : "certificate \(cert)"
        return "https: \(what), SHA-256 fingerprint \(fingerprint)"
    }

    /// A given pair: checked (readable, key matching the certificate) and fingerprinted.
    public static func given(cert: String, key: String) throws(TLSError) -> HTTPSCertificate {
        _ = try TLSContext(httpsCert: cert, key: key)
        return HTTPSCertificate(cert: cert, key: key, fingerprint: try fingerprint(ofPEMFile: cert),
                                selfSigned: false, created: false)
    }

    /// The self-signed pair kept in `directory` (the scheduler's state directory, the worker's
    /// data directory), made there on first use, so it is the same across restarts and a
    /// browser's exception or a scraper's pin keeps working. ECDSA P-256, SHA-256, valid 10
    /// years, named `localhost`, 127.0.0.1, ::1, this host's name and `names`. An expired one is
    /// replaced (and said so by `created`). The key is mode 0600.
    public static func selfSigned(in directory: String, names: [String] = []) throws(TLSError) -> HTTPSCertificate {
        let cert = (directory as NSString).appendingPathComponent(selfSignedCertName)
        let key = (directory as NSString).appendingPathComponent(selfSignedKeyName)
        let manager = FileManager.default
        switch (manager.fileExists(atPath: cert), manager.fileExists(atPath: key)) {
        case (true, true):
            if try !isExpired(cert) {
                var found = try given(cert: cert, key: key)
                found.selfSigned = true
                return found
            }
            try? manager.removeItem(atPath: cert)
            try? manager.removeItem(atPath: key)
        case (false, false): break
        default:
            throw .setup("\(cert) and \(key) go together: one is missing (remove the other to make a new pair)")
        }
        do {
            try manager.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                        attributes: [.posixPermissions: 0o700])
        } catch {
            throw .setup("cannot create \(directory) for the HTTPS certificate: \(error.localizedDescription)")
        }
        try make(cert: cert, key: key, names: names)
        var made = try given(cert: cert, key: key)
        made.selfSigned = true
        made.created = true
        return made
    }

    /// The subjectAltName entries of a self-signed certificate: each name once, addresses as IP.
    static func subjectAltNames(_ names: [String]) -> String {
        var seen = Set<String>()
        var entries: [String] = []
        for name in ["localhost", "127.0.0.1", "::1", hostName()] + names {
            guard !name.isEmpty, name.utf8.count <= 253, !name.contains(","), name != "0.0.0.0", name != "::",
                  seen.insert(name.lowercased()).inserted else { continue }
            entries.append(TLSInit.isAddress(name) ? "IP:\(name)" : "DNS:\(name)")
        }
        return entries.joined(separator: ",")
    }

    /// gethostname(2): no DNS lookup at start.
    private static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "" }
        return String(cString: buffer)
    }

    private static func make(cert: String, key: String, names: [String]) throws(TLSError) {
        guard let pkey = swarm_tls_make_key() else { throw .setup("cannot make a key: \(openSSLErrors())") }
        defer { EVP_PKEY_free(pkey) }
        let serial = Int.random(in: 1...Int.max)
        guard let x509 = swarm_tls_make_self_signed(pkey, "swarm https", subjectAltNames(names), 3650, serial) else {
            throw .setup("cannot make a self-signed certificate: \(openSSLErrors())")
        }
        defer { X509_free(x509) }
        guard swarm_tls_write_key(key, pkey) == 1 else { throw .setup("cannot write \(key): \(String(cString: strerror(errno)))") }
        guard swarm_tls_write_cert(cert, x509) == 1 else { throw .setup("cannot write \(cert): \(String(cString: strerror(errno)))") }
    }

    private static func isExpired(_ path: String) throws(TLSError) -> Bool {
        try TLSContext.checkPEMFile(path, "certificate")
        guard let x509 = swarm_tls_read_cert(path) else { throw .setup("cannot read certificate \(path): \(openSSLErrors())") }
        defer { X509_free(x509) }
        return swarm_tls_expired(x509) == 1
    }

    /// The SHA-256 fingerprint of the first certificate in a PEM file.
    public static func fingerprint(ofPEMFile path: String) throws(TLSError) -> String {
        try TLSContext.checkPEMFile(path, "certificate")
        guard let x509 = swarm_tls_read_cert(path) else { throw .setup("cannot read certificate \(path): \(openSSLErrors())") }
        defer { X509_free(x509) }
        var digest = [UInt8](repeating: 0, count: 32)
        guard swarm_tls_fingerprint(x509, &digest) == 1 else { throw .setup("cannot fingerprint \(path)") }
        return digest.map { String(format: "%02X", $0) }.joined(separator: ":")
    }
}
