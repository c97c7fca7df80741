import SwarmDashboard
import SwarmHTTP
import SwarmProtocol
import Testing

/// `/api/` requests parsed and bounded (`DashboardRoute`, `DashboardLimits`): pure.
struct DashboardRouteTests {
    func route(_ target: String, _ limits: DashboardLimits = DashboardLimits()) -> DashboardRoute? {
        try? DashboardRoute.parse(target, limits: limits).get()
    }

    func refusal(_ target: String, _ limits: DashboardLimits = DashboardLimits()) -> DashboardRoute.Refusal? {
        if case .failure(let refusal) = DashboardRoute.parse(target, limits: limits) { return refusal }
        return nil
    }

    @Test func eachPathHasItsRoute() {
        #expect(route("/api/nodes") == .nodes)
        #expect(route("/api/summary") == .summary)
        #expect(route("/api/stats") == .stats)
        #expect(route("/api/tasks") == .tasks(filter: nil, limit: 100, cursor: nil))
        #expect(route("/api/tasks/t-1.a_b") == .task(id: "t-1.a_b"))
        #expect(route("/api/tasks/t1/log") == .log(id: "t1"))
        #expect(refusal("/api/nope")?.status == .notFound)
        #expect(refusal("/api/tasks/t1/log/more")?.status == .notFound)
        #expect(refusal("/api/")?.status == .notFound)
        #expect(refusal("/metrics")?.status == .notFound)
    }

    @Test func taskIdsFollowTheTaskIdRule() {
        #expect(refusal("/api/tasks/a%20b")?.status == .badRequest)
        #expect(refusal("/api/tasks/..")?.status == .badRequest)
        #expect(refusal("/api/tasks/")?.status == .badRequest)
        #expect(route("/api/tasks/" + String(repeating: "a", count: TaskID.maxLength)) != nil)
        #expect(refusal("/api/tasks/" + String(repeating: "a", count: TaskID.maxLength + 1))?.status == .badRequest)
        #expect(refusal("/api/tasks/x/log?cursor=a")?.status == .badRequest)
    }

    @Test func listingFiltersAndPaging() {
        let parsed = route("/api/tasks?state=running%2Cqueued&state=running&node=w-1&model=m+x&limit=20&cursor=t9")
        #expect(parsed == .tasks(filter: TaskFilter(states: [.running, .queued], node: "w-1", model: "m x"), limit: 20, cursor: "t9"))
        #expect(route("/api/tasks?state=&node=&model=&cursor=") == .tasks(filter: nil, limit: 100, cursor: nil))
        #expect(refusal("/api/tasks?state=sleeping")?.reason.contains("unknown state 'sleeping'") == true)
        #expect(refusal("/api/tasks?cursor=a%2Fb")?.status == .badRequest)
        #expect(refusal("/api/tasks?colour=red")?.reason.contains("unknown query parameter 'colour'") == true)
        #expect(refusal("/api/tasks?node=%zz")?.status == .badRequest)
        #expect(refusal("/api/tasks?node=%ff")?.status == .badRequest, "not UTF-8")
        #expect(refusal("/api/tasks?node=" + String(repeating: "n", count: TaskFilter.maxNameBytes + 1))?.status == .badRequest)
    }

    @Test func theLimitIsCappedAndAtLeastOne() {
        var limits = DashboardLimits()
        limits.maxPageSize = 50
        #expect(route("/api/tasks?limit=1", limits) == .tasks(filter: nil, limit: 1, cursor: nil))
        #expect(route("/api/tasks?limit=50", limits) == .tasks(filter: nil, limit: 50, cursor: nil))
        #expect(route("/api/tasks?limit=51", limits) == .tasks(filter: nil, limit: 50, cursor: nil))
        #expect(route("/api/tasks?limit=99999999999999999999", limits) == nil)
        #expect(refusal("/api/tasks?limit=0", limits)?.status == .badRequest)
        #expect(refusal("/api/tasks?limit=-3", limits)?.status == .badRequest)
        #expect(refusal("/api/tasks?limit=ten", limits)?.status == .badRequest)
    }

    @Test func theQueryStringIsBoundedInBytesAndParameters() {
        var limits = DashboardLimits()
        limits.maxQueryBytes = 40
        limits.maxQueryParameters = 3
        let atBound = "node=" + String(repeating: "n", count: 35)
        #expect(atBound.utf8.count == 40)
        #expect(route("/api/tasks?" + atBound, limits) != nil)
        #expect(refusal("/api/tasks?" + atBound + "n", limits)?.status == .uriTooLong)
        #expect(route("/api/tasks?node=a&model=b&limit=2", limits) != nil)
        #expect(refusal("/api/tasks?node=a&model=b&limit=2&cursor=c", limits)?.status == .badRequest)
        #expect(refusal("/api/nodes?x=1")?.status == .badRequest)
    }

    @Test func withoutATokenOnlyLocalHostNamesAreAnswered() {
        for host in ["127.0.0.1:8080", "127.0.0.1", "localhost:9", "LOCALHOST", "LocalHost:1", "[::1]:8080", "[FE80::1]", "[::1]", "10.0.0.2:80"] {
            #expect(DashboardRoute.isLocalHost(host), "\(host)")
        }
        for host in [nil, "", "evil.example:8080", "evil.example", "127.0.0.1.evil.example", "localhost.evil.example",
                     "[::1", "127.0.0.1:80x", "1.2.3", "1.2.3.256", "[]:80",
                     // Read on bytes: a sign, a non-ASCII digit or a letter past f is no address.
                     "+1.2.3.4", "1.2.3.4:+80", "[::g]", "\u{FF11}.2.3.4", "localhost\u{0}"] as [String?] {
            #expect(!DashboardRoute.isLocalHost(host), "\(String(describing: host))")
        }
    }

    /// Two Host fields, a local one first: refused (a proxy in front may go by the other).
    @Test func withoutATokenARequestWithTwoHostFieldsIsNotLocal() {
        let local = HTTPRequest(method: "GET", target: "/api/nodes", headers: [("Host", "localhost")])
        #expect(DashboardRoute.isLocalRequest(local))
        #expect(!DashboardRoute.isLocalRequest(HTTPRequest(method: "GET", target: "/api/nodes")))
        let two = HTTPRequest(method: "GET", target: "/api/nodes", headers: [("Host", "localhost"), ("host", "evil.example")])
        #expect(!DashboardRoute.isLocalRequest(two))
        let same = HTTPRequest(method: "GET", target: "/api/nodes", headers: [("Host", "localhost"), ("Host", "localhost")])
        #expect(!DashboardRoute.isLocalRequest(same))
    }

    @Test func queryDecoding() {
        #expect(DashboardQuery.decode("a+b%2Cc%C3%A9") == "a b,cé")
        #expect(DashboardQuery.decode("%4") == nil)
        #expect(DashboardQuery.decode("%g0") == nil)
        #expect(DashboardQuery.decode("") == "")
    }

    @Test func staticFilesAreServedWithoutData() throws {
        for path in DashboardPage.publicPaths {
            let response = try #require(DashboardPage.response(for: Substring(path)))
            #expect(response.status == .ok)
            #expect(response.headers.contains { $0.name == "Content-Security-Policy" })
        }
        let html = String(decoding: try #require(DashboardPage.response(for: "/")).body, as: UTF8.self)
        #expect(html.contains("<script src=\"/dashboard.js\">"))
        #expect(!html.contains("http://") && !html.contains("https://"), "no CDN: the page works offline")
        let script = String(decoding: try #require(DashboardPage.response(for: "/dashboard.js")).body, as: UTF8.self)
        #expect(!script.contains("innerHTML"), "text goes in with textContent only")
        #expect(script.contains("sessionStorage") && script.contains("Authorization"))
        #expect(DashboardPage.response(for: "/api/nodes") == nil)
    }
}
