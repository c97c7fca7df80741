import COpenSSL
import Foundation

/// `swarm tls init DIR`: a CA and the certificates it signs, for certificate mode (like
/// `nomad tls`), made with the OpenSSL library (no `openssl` tool needed). EC P-256 keys,
/// SHA-256 signatures, random serial numbers; keys are created mode 0600, every file with
/// O_EXCL (never over an existing file, never through a symlink).
///
/// - `ca.pem`, `ca-key.pem`: the CA (keep its key off the cluster's machines). When DIR holds
///   both already, they are used as they are: a later run adds certificates for more workers
///   and clients from the same CA (like `nomad tls cert create`).
/// - `scheduler.pem`, `scheduler-key.pem`: names `TLSContext.schedulerName`, `localhost`,
///   127.0.0.1 and each extra host given; server and client use. Made when missing.
/// - `worker-N.pem` (and `-key.pem`): named `worker.swarm` and `worker-N.swarm`, client and
///   server use (a worker's HTTPS listener serves it); `client-N.pem`: client use only. N
///   continues after the highest already in DIR. Neither names the scheduler, so neither can
///   pose as it.
public enum TLSInit {
    /// Why the last file could not be created: a name taken meanwhile (or a link planted at
    /// it) says so.
    static func lastError() -> String {
        let code = errno
        if code == EEXIST || code == ELOOP { return "something exists at that name already (a file or a link planted there)" }
        return String(cString: strerror(code))
    }

    /// Makes the files in `directory` (created if missing, mode 0700). Returns the paths
    /// written, in order; an existing CA is used, never replaced.
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
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        } catch {
            throw .setup("cannot create \(directory): \(error.localizedDescription)")
        }
        var written: [String] = []
        let ca: Issued
        if try pairExists(directory, "ca") {
            ca = try Issued(loading: path(directory, "ca.pem"), key: path(directory, "ca-key.pem"))
        } else {
            ca = try Issued(cn: "swarm CA", san: nil, usage: nil, issuer: nil, days: days)
            written += try ca.write(directory, "ca")
        }
        if try pairExists(directory, "scheduler") {
            guard hosts.isEmpty else {
                throw .setup("\(path(directory, "scheduler.pem")) exists already and keeps its names: remove it and scheduler-key.pem to make one with --host")
            }
        } else {
            let schedulerSAN = (["DNS:\(TLSContext.schedulerName)", "DNS:localhost", "IP:127.0.0.1"]
                + hosts.map { isAddress($0) ? "IP:\($0)" : "DNS:\($0)" }).joined(separator: ",")
            let scheduler = try Issued(cn: TLSContext.schedulerName, san: schedulerSAN, usage: "serverAuth,clientAuth",
                                       issuer: ca, days: days)
            written += try scheduler.write(directory, "scheduler")
        }
        for (role, count) in [("worker", workers), ("client", clients)] {
            let first = highestIndex(directory, role) + 1
            for n in first..<(first + count) {
                let name = "\(role)-\(n)"
                let (san, usage) = role == "worker"
                    ? ("DNS:worker.swarm,DNS:\(name).swarm", "serverAuth,clientAuth")
                    : ("DNS:client.swarm", "clientAuth")
                let cert = try Issued(cn: "\(name).swarm", san: san, usage: usage, issuer: ca, days: days)
                written += try cert.write(directory, name)
            }
        }
        return written
    }

    /// Whether `NAME.pem` and `NAME-key.pem` are both in `directory`; one without the other
    /// is an error (half a pair is never completed or replaced).
    private static func pairExists(_ directory: String, _ name: String) throws(TLSError) -> Bool {
        let cert = FileManager.default.fileExists(atPath: path(directory, "\(name).pem"))
        let key = FileManager.default.fileExists(atPath: path(directory, "\(name)-key.pem"))
        guard cert == key else {
            throw .setup("\(path(directory, cert ? "\(name)-key.pem" : "\(name).pem")) is missing beside \(path(directory, cert ? "\(name).pem" : "\(name)-key.pem")): remove the other or restore it")
        }
        return cert
    }

    /// The highest N of `ROLE-N.pem` or `ROLE-N-key.pem` in `directory` (0: none).
    static func highestIndex(_ directory: String, _ role: String) -> Int {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return files.compactMap { file -> Int? in
            guard file.hasPrefix("\(role)-"), file.hasSuffix(".pem") else { return nil }
            var middle = file.dropFirst(role.count + 1).dropLast(4)
            if middle.hasSuffix("-key") { middle = middle.dropLast(4) }
            return Int(middle).flatMap { (1...1_000_000).contains($0) ? $0 : nil }
        }.max() ?? 0
    }

    private static func path(_ directory: String, _ file: String) -> String {
        (directory as NSString).appendingPathComponent(file)
    }

    static func isAddress(_ host: String) -> Bool {
        var v4 = in_addr(), v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }

    /// A key and its certificate, freed with the object.
    private final class Issued {
        let key: OpaquePointer
        let cert: OpaquePointer

        init(cn: String, san: String?, usage: String?, issuer: Issued?, days: Int) throws(TLSError) {
            guard let key = swarm_tls_make_key() else { throw .setup("cannot make a key: \(openSSLErrors())") }
            // Random, so certificates a CA signs on different runs never share a serial number.
            let serial = Int.random(in: 1...Int.max)
            guard let cert = swarm_tls_make_cert(key, cn, san, usage, issuer?.cert, issuer?.key, days, serial) else {
                EVP_PKEY_free(key)
                throw .setup("cannot make the certificate of \(cn): \(openSSLErrors())")
            }
            self.key = key
            self.cert = cert
        }

        /// An existing CA: its certificate and key, which must match.
        init(loading certPath: String, key keyPath: String) throws(TLSError) {
            guard let cert = swarm_tls_read_cert(certPath) else {
                throw .setup("cannot read the CA certificate \(certPath): \(openSSLErrors())")
            }
            guard let key = swarm_tls_read_key(keyPath) else {
                X509_free(cert)
                throw .setup("cannot read the CA key \(keyPath): \(openSSLErrors())")
            }
            self.cert = cert
            self.key = key
            guard X509_check_private_key(cert, key) == 1 else {
                throw .setup("the CA key \(keyPath) does not match \(certPath)")
            }
            guard X509_check_ca(cert) != 0 else { throw .setup("\(certPath) is not a CA certificate") }
        }

        deinit {
            X509_free(cert)
            EVP_PKEY_free(key)
        }

        func write(_ directory: String, _ name: String) throws(TLSError) -> [String] {
            let certPath = TLSInit.path(directory, "\(name).pem")
            let keyPath = TLSInit.path(directory, "\(name)-key.pem")
            guard swarm_tls_write_key(keyPath, key) == 1 else {
                throw .setup("cannot write \(keyPath): \(TLSInit.lastError())")
            }
            guard swarm_tls_write_cert(certPath, cert) == 1 else {
                throw .setup("cannot write \(certPath): \(TLSInit.lastError())")
            }
            return [certPath, keyPath]
        }
    }
}
