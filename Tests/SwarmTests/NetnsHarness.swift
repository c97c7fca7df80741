import Foundation
import Testing

/// Hosts for end-to-end tests: each host is a network namespace of its own, wired by a veth
/// pair to a bridge in one more namespace (the "switch"), with an address `10.211.X.N/24` on
/// its `eth0`. Nothing is made or changed in the root namespace: the veth pairs are created
/// inside the switch's namespace and their host ends moved into the hosts' namespaces.
///
/// Faults between hosts: `setLink` takes a host's cable out of the switch (its veth down, in
/// the switch's namespace) and back; `setPath` cuts it off silently (its port leaves the
/// bridge, its link stays up); `reboot` kills every process of a host with SIGKILL and
/// gives it a new network stack (a namespace made anew, same name and address), so nothing of
/// its old connections answers or closes: what a machine that lost power and came back is.
///
/// Names carry this process's pid and a random tag (`swt<pid>x<tag>-h0`), so tests running in
/// parallel never clash, and namespaces left by a test process that died (kill -9) are
/// removed by the next harness made on this machine. `cleanup()` (call it in a `defer`)
/// stops every process first (`ProcessHarness.cleanup`), then deletes every namespace, which
/// takes their veths and the bridge with them.
final class NetnsHarness: @unchecked Sendable {
    struct Host {
        /// Its position in `hosts`.
        let index: Int
        /// The namespace's name.
        let namespace: String
        /// Its address on the switch, without the prefix length.
        let address: String
        /// `ip netns exec NAMESPACE`: runs a program (here `swarm`) inside the host.
        let launcher: [String]
    }

    let processes: ProcessHarness
    let prefix: String
    private(set) var hosts: [Host] = []
    private var namespaces: [String] = []
    /// The switch's namespace, and the switch-side veth of each host (by index).
    private var bridge = ""
    private var links: [String] = []
    private var subnet = ""

    static let namePrefix = "swt"

    /// Why this machine cannot make namespaces (not root, no `ip`, no veth/bridge support),
    /// or nil when it can. Probed once per test process, with a namespace of its own.
    static let unavailableReason: String? = probe()

    /// Whether tests may use namespaces; prints the reason once when they may not.
    static var available: Bool {
        if let reason = unavailableReason {
            print("NetnsHarness: network namespace tests skipped: \(reason)")
            return false
        }
        return true
    }

    /// Makes `count` hosts (`hosts[0]` ... `hosts[count - 1]`) on one switch. On failure,
    /// whatever was made is removed before the error is thrown.
    init(hosts count: Int, processes: ProcessHarness) throws {
        precondition(count >= 1 && count <= 200)
        self.processes = processes
        prefix = "\(Self.namePrefix)\(getpid())x\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
        Self.removeLeftovers()
        subnet = "10.211.\(Int.random(in: 1...254))"
        bridge = "\(prefix)-sw"
        do {
            try add(bridge)
            try Self.ip(["-n", bridge, "link", "add", "br0", "type", "bridge"])
            try Self.ip(["-n", bridge, "link", "set", "br0", "up"])
            for index in 0..<count {
                let namespace = "\(prefix)-h\(index)"
                try add(namespace)
                links.append("v\(index)")
                try wire(index, namespace: namespace)
                hosts.append(Host(index: index, namespace: namespace, address: "\(subnet).\(index + 1)",
                                  launcher: [Self.ipPath ?? "ip", "netns", "exec", namespace]))
            }
        } catch {
            removeNamespaces()
            throw error
        }
    }

    /// Starts a long-running `swarm` process on `host` (see `ProcessHarness.start`).
    @discardableResult
    func start(_ name: String, on host: Host, _ arguments: [String], environment: [String: String] = [:]) throws -> ProcessHarness.Child {
        try processes.start(name, arguments, environment: environment, launcher: host.launcher)
    }

    /// Runs a short `swarm` command on `host` to completion (see `ProcessHarness.run`).
    func run(on host: Host, _ arguments: [String], timeout: Double = 60, environment: [String: String] = [:]) throws -> ProcessHarness.RunResult {
        try processes.run(arguments, timeout: timeout, environment: environment, launcher: host.launcher)
    }

    /// Stops every process (a namespace with a process inside outlives its name), then
    /// deletes every namespace of this harness. Records an issue if one is left.
    func cleanup() {
        processes.cleanup()
        removeNamespaces()
        let left = Self.namespaceNames().filter { $0.hasPrefix(prefix + "-") }
        if !left.isEmpty { Issue.record("network namespaces left behind: \(left)") }
    }

    /// Connects host `index`'s namespace to the switch through the veth `links[index]`.
    private func wire(_ index: Int, namespace: String) throws {
        let link = links[index]
        try Self.ip(["-n", bridge, "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", namespace])
        try Self.ip(["-n", bridge, "link", "set", link, "master", "br0", "up"])
        try Self.ip(["-n", namespace, "addr", "add", "\(subnet).\(index + 1)/24", "dev", "eth0"])
        try Self.ip(["-n", namespace, "link", "set", "eth0", "up"])
        try Self.ip(["-n", namespace, "link", "set", "lo", "up"])
    }

    // MARK: - Faults

    /// Takes `host`'s cable out of the switch (`up: false`) or puts it back: its link loses
    /// carrier (the host itself sees it go down), and packets to and from it are dropped
    /// meanwhile; its peers are told nothing.
    func setLink(_ host: Host, up: Bool) throws {
        try Self.ip(["-n", bridge, "link", "set", links[host.index], up ? "up" : "down"])
    }

    /// Cuts `host` off without it noticing (`connected: false`): its port leaves the switch
    /// but its link stays up, so its packets are dropped silently further on, as when a
    /// switch or a router between two sites fails. Its TCP connections back off as in a
    /// real partition, rather than seeing a local link go down.
    func setPath(_ host: Host, connected: Bool) throws {
        try Self.ip(["-n", bridge, "link", "set", links[host.index]] + (connected ? ["master", "br0"] : ["nomaster"]))
    }

    /// Pids of the processes in `host`'s namespace.
    func pids(on host: Host) -> [Int32] {
        ((try? Self.ip(["netns", "pids", host.namespace])) ?? "").split(separator: "\n").compactMap { Int32($0) }
    }

    /// SIGKILL to every process in `host`, until none is left (bounded: 10 s).
    func killEverything(on host: Host) {
        for _ in 0..<200 {
            let pids = pids(on: host)
            if pids.isEmpty { return }
            for pid in pids { kill(pid, SIGKILL) }
            usleep(50_000)
        }
        Issue.record("processes left in \(host.namespace) after SIGKILL: \(pids(on: host))")
    }

    /// The host loses power and comes back: every process in it is killed with SIGKILL, and
    /// its namespace is made anew (same name, address and switch port, a new veth), so the
    /// kernel has no trace of its old connections: their peers hear nothing, not even a reset,
    /// until they send to it. Start its programs again with `start(_:on:_:)`.
    func reboot(_ host: Host) throws {
        killEverything(on: host)
        try Self.ip(["netns", "delete", host.namespace])
        try Self.ip(["netns", "add", host.namespace])
        // The old veth goes away with the old namespace, in the background: a new name.
        links[host.index] = "v\(host.index)r\(UInt16.random(in: 0...UInt16.max))"
        try wire(host.index, namespace: host.namespace)
    }

    private func add(_ namespace: String) throws {
        try Self.ip(["netns", "add", namespace])
        namespaces.append(namespace)
    }

    private func removeNamespaces() {
        // Hosts first, then the switch: each deletion takes its veth pairs with it.
        for namespace in namespaces.reversed() { _ = try? Self.ip(["netns", "delete", namespace]) }
        namespaces = []
        hosts = []
    }

    // MARK: - ip(8)

    struct IPError: Error, CustomStringConvertible {
        let description: String
    }

    static let ipPath: String? = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        .first { FileManager.default.isExecutableFile(atPath: $0) }

    /// Runs `ip ARGS` (bounded: killed after 10 s); throws its stderr when it fails.
    @discardableResult
    static func ip(_ arguments: [String]) throws -> String {
        guard let path = ipPath else { throw IPError(description: "no ip(8) program (iproute2) found") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let output: CapturedRun.Output
        do { output = try CapturedRun.run(process, timeout: 10) } catch { throw IPError(description: "cannot run \(path): \(error)") }
        guard output.status == 0 else {
            let text = output.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
            throw IPError(description: "ip \(arguments.joined(separator: " ")): \(text.isEmpty ? "exit status \(output.status)" : text)")
        }
        return output.stdout
    }

    static func namespaceNames() -> [String] {
        guard let list = try? ip(["netns", "list"]) else { return [] }
        return list.split(separator: "\n").compactMap { $0.split(separator: " ").first.map(String.init) }
    }

    /// Deletes namespaces of earlier harnesses whose test process is gone.
    static func removeLeftovers() {
        for name in namespaceNames() where name.hasPrefix(namePrefix) {
            let digits = name.dropFirst(namePrefix.count).prefix { $0.isNumber }
            guard let pid = Int32(digits), pid > 1, pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else { continue }
            _ = try? ip(["netns", "delete", name])
        }
    }

    /// Makes and deletes a namespace with a bridge and a veth pair: what `init` needs.
    private static func probe() -> String? {
        guard ipPath != nil else { return "no ip(8) program (iproute2) found" }
        let name = "\(namePrefix)\(getpid())x\(String(UInt32.random(in: 0...UInt32.max), radix: 16))-probe"
        do {
            try ip(["netns", "add", name])
        } catch {
            return "\(error) (making network namespaces needs root or CAP_SYS_ADMIN)"
        }
        defer { _ = try? ip(["netns", "delete", name]) }
        do {
            try ip(["-n", name, "link", "add", "br0", "type", "bridge"])
            try ip(["-n", name, "link", "add", "p0", "type", "veth", "peer", "name", "p1"])
        } catch {
            return "\(error) (the kernel lacks bridge or veth support)"
        }
        return nil
    }
}
