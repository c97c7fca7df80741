import SwarmDashboard
import SwarmHTTP
import SwarmProtocol

/// The web dashboard on the `--http-listen` listener (README, "Dashboard"): its static files
/// at `/`, and `/api/` answered by the same code that answers the CLI (`ClientRequests`), so
/// the JSON has the fields of `--json`. Log streams follow a task through the same two
/// points as `swarm logs -f` (`dashboardOutput`, `dashboardEnded`).
extension SchedulerServer {
    /// Adds the dashboard's routes to `router`.
    func addDashboard(to router: inout HTTPRouter) {
        for path in DashboardPage.publicPaths {
            router.add("GET", path) { request, responder in
                responder.respond(DashboardPage.response(for: request.path) ?? .text(.notFound, "no such page"))
            }
        }
        router.addPrefix("GET", "/api/") { [weak self] request, responder in
            self?.dashboardRequest(request, responder)
        }
    }

    func dashboardRequest(_ request: HTTPRequest, _ responder: HTTPResponder) {
        // Without a token the listener is on loopback; a page that rebinds its DNS name to it
        // still sends its name (`DashboardRoute.isLocalHost`).
        if config.token == nil, !DashboardRoute.isLocalRequest(request) {
            return responder.respond(.text(HTTPStatus(403, "Forbidden"),
                                           "without a cluster token /api/ answers only requests for localhost or a numeric address (Host: \(PeerText.safe(request.header("Host") ?? "", limit: 100)))"))
        }
        switch DashboardRoute.parse(Self.originForm(request), limits: dashboardStreams.limits) {
        case .failure(let refusal):
            responder.respond(.text(refusal.status, refusal.reason))
        case .success(.log(let id)):
            followLog(id, responder)
        case .success(.summary):
            responder.respond(Self.json(summary()))
        case .success(let route):
            responder.respond(answer(route))
        }
    }

    /// The request's path and query. An absolute-form target (http://host:port/api/...) is
    /// read as its path and query; the origin form (every browser's) is the target as sent,
    /// not copied (this runs for every log stream).
    static func originForm(_ request: HTTPRequest) -> String {
        let utf8 = request.target.utf8
        if utf8.first == UInt8(ascii: "/") { return request.target }
        let query = utf8.firstIndex(of: UInt8(ascii: "?")).map { request.target[$0...] } ?? ""
        return String(request.path) + query
    }

    /// A JSON route's answer: the CLI's request, asked as a holder of the read token would.
    private func answer(_ route: DashboardRoute) -> HTTPResponse {
        let message: Message
        switch route {
        case .nodes: message = .listNodes(.init(requestId: 0))
        case .stats: message = .stats(.init(requestId: 0))
        case .task(let id): message = .status(.init(requestId: 0, id: id))
        case let .tasks(filter, limit, cursor): message = .listTasks(.init(requestId: 0, after: cursor, limit: limit, filter: filter))
        case .summary, .log: return .text(.internalError, "not a JSON route")
        }
        let context = ClientRequestContext(nowMs: clocks.monotonic(), at: clocks.wall(), limits: config.clientLimits,
                                           heldBlobSize: { [unowned self] in self.heldBlobSize($0) }, archive: archive,
                                           endedTaskState: { [unowned self] in self.store?.endedState(of: $0) })
        // The read token's rights: the dashboard only reads, whichever token the request carried.
        let outcome = ClientRequests.handle(message, identity: .read, state: &state, context: context)
        if let refusal = outcome.refusal {
            let status: HTTPStatus = switch refusal.code {
            case .unknownTask, .unknownNode: .notFound
            case .badMessage, .invalidTask: .badRequest
            case .forbidden: HTTPStatus(403, "Forbidden")
            default: .internalError
            }
            return .text(status, refusal.reason)
        }
        for reply in outcome.replies {
            switch reply {
            case .nodeList(let list): return Self.json(list.nodes)
            case .taskInfo(let info): return Self.json(info.task)
            case .taskList(let page): return Self.json(DashboardTaskPage(tasks: page.tasks, next: page.next))
            default: continue
            }
        }
        for case .sendStats(let reply) in outcome.flow {
            return Self.json(StatsSnapshot(completeStats(reply)))
        }
        return .text(.internalError, "no answer")
    }

    /// `/api/summary`: counted from the cluster state now, with the ledger's history.
    func summary() -> DashboardSummary {
        var queued = 0, running = 0
        for record in state.tasks.values {
            switch record.info.state {
            case .queued: queued += 1
            case .running: running += 1
            default: break
            }
        }
        var byState: [String: Int] = [:]
        var slots = 0, free = 0
        for node in state.listNodes(nowMs: clocks.monotonic()) {
            byState[node.state.rawValue, default: 0] += 1
            if node.connected && node.state != .lost {
                slots += node.slots
                free += node.freeSlots
            }
        }
        let now = clocks.wall()
        return DashboardSummary(queued: queued, running: running, workers: byState, slots: slots, freeSlots: free,
                                throughput: dashboardLedger.throughput(now: now), recent: dashboardLedger.recent, at: now)
    }

    /// `/api/tasks/ID/log`: what the scheduler holds of the log, then every piece as it comes
    /// until the task ends. An ended task's answer is its log and `end` at once (a whole
    /// answer with a length: no stream).
    private func followLog(_ id: String, _ responder: HTTPResponder) {
        // A task in memory that has not ended (what a follower opened from the page mostly
        // asks for) needs no copy of its info nor the archive: only its state is read.
        if state.tasks[id].map({ $0.info.state.isTerminal }) != false {
            guard let info = try? state.task(id, archive: archive) else {
                return responder.respond(.text(.notFound, "no task \(id)"))
            }
            if info.state.isTerminal {
                let body = dashboardStreams.endedBody(backlog: schedulerCopy(id, info), state: info.state.rawValue)
                return responder.respond(HTTPResponse(status: .ok, headers: Self.streamHeaders, body: body))
            }
        }
        guard dashboardStreams.hasRoom else {
            let most = dashboardStreams.limits.maxStreams
            return responder.respond(.text(.unavailable, "\(most) log streams are open on this listener, the most it serves; try again later",
                                           headers: [("Retry-After", "5")]))
        }
        let first = dashboardStreams.firstEvent(backlog: logs.text(id: id))
        guard let stream = responder.beginStream(HTTPResponse(status: .ok, headers: Self.streamHeaders), first: first) else { return }
        dashboardStreams.add(stream, id: id)
    }

    /// A log stream's headers (built once: they are the same for every stream).
    static let streamHeaders: [(name: String, value: String)] = [
        ("Content-Type", "text/event-stream; charset=utf-8"), ("Cache-Control", "no-store"), ("X-Accel-Buffering", "no"),
    ]

    /// A piece of a task's log (as the scheduler keeps it) to its dashboard streams.
    func dashboardOutput(id: String, piece: String) {
        dashboardStreams.output(id: id, data: piece)
    }

    /// A task ended: its streams end, and the ledger counts it.
    func dashboardEnded(id: String, state ended: TaskState?) {
        guard let ended else { return }
        dashboardLedger.ended(id: id, state: ended, at: clocks.wall())
        dashboardStreams.ended(id: id, state: ended.rawValue)
    }

    static func json<T: Encodable>(_ value: T) -> HTTPResponse {
        guard let body = try? FastJSONEncoder().encode(value) else {
            return .text(.internalError, "the answer could not be encoded")
        }
        return HTTPResponse(status: .ok, headers: [("Content-Type", "application/json"), ("Cache-Control", "no-store")], body: body)
    }
}
