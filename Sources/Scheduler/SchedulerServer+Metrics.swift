import SwarmDashboard
import SwarmHTTP
import SwarmMetrics
import SwarmProtocol
import SwarmTransport

/// `--http-listen`: the scheduler's HTTP listener, its `/metrics` (README, "Metrics") and the
/// dashboard (README, "Dashboard").
extension SchedulerServer {
    /// Starts the HTTP listener when the config names one (`HTTPListen` says where it may).
    func startHTTP() throws(SchedulerStartError) {
        guard let host = config.httpHost else { return }
        var router = HTTPRouter()
        router.add("GET", "/metrics") { [weak self] _, responder in
            guard let self else { return }
            responder.respond(self.scrape())
        }
        addDashboard(to: &router)
        do {
            let (server, address) = try HTTPListen.start(loop: loop, host: host, port: config.httpPort,
                                                         token: config.token?.text, router: router,
                                                         moreTokens: config.tokenRing.readerTexts,
                                                         publicPaths: DashboardPage.publicPaths,
                                                         https: HTTPSOptions(cert: config.httpTLSCert ?? config.tls?.cert,
                                                                             key: config.httpTLSKey ?? config.tls?.key,
                                                                             selfSignedDirectory: config.stateDir))
            server.log = { [weak self] line in self?.logger.notice("\(line)") }
            http = server
            httpAddress = address
            httpsNote = server.certificate?.startLine
        } catch {
            throw .http(error.description)
        }
    }

    /// The metrics now, gauges computed from the state at this moment; the same body again
    /// while the last is fresh (`ScrapeCache`: a flood of scrapes holds the loop a bounded share).
    func scrape() -> HTTPResponse {
        let body = metrics.scrapeCache.body(now: { ContinuousClock.now }) {
            var clients = 0
            var bytes = endedConnectionBytes
            for session in sessions.values {
                if session.hello?.role == .client { clients += 1 }
                bytes.received += session.connection.bytesReceived
                bytes.sent += session.connection.bytesSent
            }
            metrics.refresh(state, clients: clients, bytes: bytes)
            return metrics.registry.render()
        }
        return HTTPResponse(status: .ok, headers: [("Content-Type", MetricsRegistry.contentType)], body: body)
    }
}
