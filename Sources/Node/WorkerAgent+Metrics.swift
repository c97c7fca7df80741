import SwarmHTTP
import SwarmMetrics
import SwarmProtocol
import SwarmTransport

/// `--http-listen`: the worker's own HTTP listener and its `/metrics` (README, "Metrics").
extension WorkerAgent {
    /// Starts the HTTP listener when the config names one (`HTTPListen` says where it may).
    /// Call before `start`; `stop` closes it.
    public func startHTTP() throws(HTTPListen.Failure) {
        guard let host = config.httpHost else { return }
        var router = HTTPRouter()
        router.add("GET", "/metrics") { [weak self] _, responder in
            guard let self else { return }
            let body = self.metrics.scrapeCache.body(now: { ContinuousClock.now }) {
                self.metrics.refresh(running: self.runners.count, slots: self.config.slots)
                return self.metrics.registry.render()
            }
            responder.respond(HTTPResponse(status: .ok, headers: [("Content-Type", MetricsRegistry.contentType)], body: body))
        }
        let https = HTTPSOptions(cert: config.httpTLSCert ?? config.tls?.cert, key: config.httpTLSKey ?? config.tls?.key,
                                 selfSignedDirectory: config.dataDir)
        let (server, address) = try HTTPListen.start(loop: loop, host: host, port: config.httpPort,
                                                     token: config.token?.text, router: router, https: https)
        // The scheduler's other reading tokens, known by digest once it welcomes this worker.
        server.acceptsOtherBearer = { [weak self] given in
            self?.readerDigests.contains(bearer: given) ?? false
        }
        server.log = { [weak self] line in self?.logger.notice("\(line)") }
        http = server
        httpAddress = address
        httpsNote = server.certificate?.startLine
    }
}
