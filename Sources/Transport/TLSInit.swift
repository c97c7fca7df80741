import COpenSSL
import Foundation

/// `swarm tls init DIR`: a CA and the certificates it signs, for certificate mode (like
/// `nomad tls`), made with the OpenSSL library (no `openssl` tool needed). EC P-256 keys,
/// SHA-256 signatures; keys are written mode 0600.
///
/// - `ca.pem`, `ca-key.pem`: the CA (keep its key off the cluster's machines).
/// - `scheduler.pem`, `scheduler-key.pem`: names `TLSContext.schedulerName`, `localhost`,
///   127.0.0.1 and each extra host given; server and client use.
/// - `worker-N.pem`, `client-N.pem` (and `-key.pem`): client use only, so neither can pose as
///   the scheduler.
public enum TLSInit {
    /// Why the last file could not be created: a name taken meanwhile (or a link planted at
    /// it) says so.
    static func lastError() -> String {
        let code = errno
        if code == EEXIST || code == ELOOP { return "something exists at that name already (a file or a link): choose an empty directory" }
        return String(cString: strerror(code))
    }

    /// Makes the files in `directory` (created if missing). Refuses to overwrite any file,
    /// and writes through no link planted at a file's name.
    /// Returns the paths written.
    public static func make(directory: String, workers: Int, clients: Int, hosts: [String] = [],
                            days: Int = 825) throws(TLSError) -> [String] {
        guard (0...1000).contains(workers), (0...1000).contains(clients) else {
            throw .setup("workers and clients: 0 to 1000 each")
        }
        guard (1...36500).contains(days) else { throw .setup("days: 1 to 36500") }
        for host in hosts where host.isEmpty || host.contains(",") || host.utf8.count > 253 {
            throw .setup("not a host name or address: '\(host)'")
        }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw .setup("cannot create \(directory): \(error.localizedDescription)")
        }
        var names = ["ca", "scheduler"]
        names += (0..<workers).map { "worker-\($0 + 1)" }
        names += (0..<clients).map { "client-\($0 + 1)" }
        for name in names {
            for file in ["\(name).pem", "\(name)-key.pem"] where FileManager.default.fileExists(atPath: path(directory, file)) {
                throw .setup("\(path(directory, file)) exists already: choose an empty directory")
            }
        }
        let ca = try Issued(cn: "swarm CA", san: nil, usage: nil, issuer: nil, days: days, serial: 1)
        var written = try ca.write(directory, "ca")
        let schedulerSAN = (["DNS:\(TLSContext.schedulerName)", "DNS:localhost", "IP:127.0.0.1"]
            + hosts.map { isAddress($0) ? "IP:\($0)" : "DNS:\($0)" }).joined(separator: ",")
        let scheduler = try Issued(cn: TLSContext.schedulerName, san: schedulerSAN, usage: "serverAuth,clientAuth",
                                   issuer: ca, days: days, serial: 2)
        written += try scheduler.write(directory, "scheduler")
        var serial = 3
        for name in names.dropFirst(2) {
            let role = name.hasPrefix("worker") ? "worker" : "client"
            let cert = try Issued(cn: "\(name).swarm", san: "DNS:\(role).swarm", usage: "clientAuth",
                                  issuer: ca, days: days, serial: serial)
            serial += 1
            written += try cert.write(directory, name)
        }
        return written
    }

    private static func path(_ directory: String, _ file: String) -> String {
        (directory as NSString).appendingPathComponent(file)
    }

    private static func isAddress(_ host: String) -> Bool {
        var v4 = in_addr(), v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }

    /// A key and its certificate, freed with the object.
    private final class Issued {
        let key: OpaquePointer
        let cert: OpaquePointer

        init(cn: String, san: String?, usage: String?, issuer: Issued?, days: Int, serial: Int) throws(TLSError) {
            guard let key = swarm_tls_make_key() else { throw .setup("cannot make a key: \(openSSLErrors())") }
            guard let cert = swarm_tls_make_cert(key, cn, san, usage, issuer?.cert, issuer?.key, days, serial) else {
                EVP_PKEY_free(key)
                throw .setup("cannot make the certificate of \(cn): \(openSSLErrors())")
            }
            self.key = key
            self.cert = cert
        }

        deinit {
            X509_free(cert)
            EVP_PKEY_free(key)
        }

        func write(_ directory: String, _ name: String) throws(TLSError) -> [String] {
            let certPath = TLSInit.path(directory, "\(name).pem")
            let keyPath = TLSInit.path(directory, "\(name)-key.pem")
            guard swarm_tls_write_cert(certPath, cert) == 1 else { throw .setup("cannot write \(certPath): \(TLSInit.lastError())") }
            guard swarm_tls_write_key(keyPath, key) == 1 else { throw .setup("cannot write \(keyPath): \(TLSInit.lastError())") }
            return [certPath, keyPath]
        }
    }
}
