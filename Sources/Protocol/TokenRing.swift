import Foundation

/// What a proven token lets its holder do (issue 16 item 2). The cluster token does
/// everything; the scoped tokens each one role's share; a task's credential (`task:ID`
/// clients) lives in its task's subtree (`ClientPolicy`).
public enum TokenScope: String, Sendable, CaseIterable {
    /// The cluster token, or a scheduler without any token: everything.
    case cluster
    /// `--worker-token-file`: register as a worker and run tasks; nothing as a client.
    case worker
    /// `--submit-token-file`: submit, cancel, read and fetch; no worker, no drain, no gc.
    case submit
    /// `--read-token-file`: status, tasks, nodes, logs, stats, waits, metrics; nothing else.
    case read
    /// A task's credential (`SWARM_TASK_TOKEN`, as client `task:ID`).
    case task

    /// Why a peer holding this scope may not take `role`, or nil.
    public func refusal(role: PeerRole) -> String? {
        switch (self, role) {
        case (.cluster, _), (.worker, .worker), (.submit, .client), (.read, .client), (.task, .client): nil
        case (.worker, .client):
            "the worker token may only connect as a worker (clients use the cluster, submit or read token)"
        case (.submit, .worker), (.read, .worker), (.task, .worker):
            "a \(rawValue) token may not register a worker (only the cluster token or the worker token may)"
        }
    }
}

/// The tokens a scheduler accepts: the cluster token and up to three scoped ones. A peer
/// proves one of them with the HMAC challenge (`ServerHandshake`); which one it proved
/// decides what it may do. No token crosses the wire.
public struct TokenRing: Sendable {
    public var cluster: ClusterToken?
    public var worker: ClusterToken?
    public var submit: ClusterToken?
    public var read: ClusterToken?

    public init(cluster: ClusterToken?, worker: ClusterToken? = nil, submit: ClusterToken? = nil, read: ClusterToken? = nil) {
        self.cluster = cluster; self.worker = worker; self.submit = submit; self.read = read
    }

    /// Whether peers must prove a token at all.
    public var requiresAuth: Bool { cluster != nil || hasScopedTokens }
    public var hasScopedTokens: Bool { worker != nil || submit != nil || read != nil }

    /// The scoped tokens an HTTP client may present as `Authorization: Bearer` besides the
    /// cluster token (metrics, dashboard: reading): the submit and read tokens as written.
    public var readerTexts: [String] { [submit, read].compactMap { $0?.text } }

    /// What a worker's `/metrics` is told to take besides its own token (`BearerDigests`): the
    /// cluster, submit and read tokens, by digest.
    public var readerDigests: [String] { [cluster, submit, read].compactMap { $0.map(BearerDigests.hex) } }

    /// Why this ring cannot be used, or nil. Scoped tokens need the cluster token beside them
    /// (task credentials and the key that seals `secretEnv` derive from it), and no two tokens
    /// may be equal: the token a peer proved must name one scope.
    public var problem: String? {
        let named: [(String, ClusterToken?)] = [("worker", worker), ("submit", submit), ("read", read)]
        if cluster == nil, let first = named.first(where: { $0.1 != nil }) {
            return "--\(first.0)-token-file needs the cluster token beside it (--token-file or SWARM_TOKEN): task credentials and secret encryption derive from it"
        }
        let all = [("cluster", cluster)] + named
        for i in all.indices { for j in all.indices where i < j {
            if let a = all[i].1, let b = all[j].1, a == b { return "the \(all[i].0) and \(all[j].0) tokens are the same: each role needs its own token" }
        } }
        return nil
    }

    /// The scope whose key proves `mac` for a peer of `role` and `name`, with that key (for
    /// the server's own proof), or nil. Every candidate's proof is computed and compared in
    /// constant time, with no early exit, so the time taken does not tell which one matched.
    /// A client named `task:ID` proves only that task's credential.
    public func match(mac: String, nonce: String, role: PeerRole, name: String) -> (scope: TokenScope, key: ClusterToken)? {
        var candidates: [(TokenScope, ClusterToken)] = []
        if role == .client, name.hasPrefix(ClusterToken.taskNamePrefix) {
            if let cluster { candidates.append((.task, cluster.key(role: role, name: name))) }
        } else {
            for case let (scope, token?) in [(TokenScope.cluster, cluster), (.worker, worker), (.submit, submit), (.read, read)] {
                candidates.append((scope, token))
            }
        }
        var found: (scope: TokenScope, key: ClusterToken)?
        for (scope, key) in candidates where key.verify(mac, purpose: "peer", nonce: nonce, role: role, name: name) {
            found = (scope, key)
        }
        return found
    }
}
