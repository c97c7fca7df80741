import Foundation
import SwarmClient
import SwarmNode
import SwarmProtocol
import SwarmScheduler

/// `cluster.json`: one file that describes a cluster, read by `swarm scheduler --config` and
/// `swarm worker --config --name N`. Command-line flags override what it says.
/// Unknown keys are errors, so a typo never silently falls back to a default.
public struct ClusterFile: Sendable, Equatable {
    public struct SchedulerSection: Sendable, Equatable {
        /// HOST:PORT the scheduler binds.
        public var listen: String?
        /// HOST:PORT workers and clients dial (the scheduler's name as others reach it).
        public var address: String?
        /// HOST:PORT of the HTTP listener serving `/metrics` (off when absent).
        public var httpListen: String?
        /// The certificate and key that listener serves over HTTPS (`--http-tls-cert`, `--http-tls-key`).
        public var httpTlsCert: String?
        public var httpTlsKey: String?
        public var stateDir: String?
        public var tokenFile: String?
        /// `tokens`: `{"worker": FILE, "submit": FILE, "read": FILE}`, the scoped tokens'
        /// files (`--worker-token-file` and the others). Workers use `worker` before `tokenFile`.
        public var workerTokenFile: String?
        public var submitTokenFile: String?
        public var readTokenFile: String?
        /// Certificate mode's files (`tlsCert`, `tlsKey`, `tlsCa`), as `--tls-cert` and the rest.
        public var tlsCert: String?
        public var tlsKey: String?
        public var tlsCa: String?
        public var lostAfterSeconds: Double?
        public var heartbeatSeconds: Double?
        /// `spread` or `binpack`.
        public var placement: String?
        /// Cluster-wide running-task limit per model.
        public var modelLimits: [String: Int]?
        /// Assignments sent ahead to a busy worker, per worker (0 to 64; 0: off). Nil: the default.
        public var prefetch: Int?
        /// Packed inputs of one task together at most, in bytes (default 256 MiB).
        public var maxInputBytesPerTask: Int64?
        /// `retention`: `{"inMemoryFinished": 5000, "maxFinishedTasks": 100000, "maxAgeHours": 168}`.
        public var retention: SchedulerRetention?

        /// Defaults when neither a flag nor the file sets them.
        public static let defaultLostAfterSeconds = 10.0
        public static let defaultHeartbeatSeconds = 1.0

        /// What is wrong with these heartbeat and lost-after seconds (nil: the defaults fill
        /// in), or nil. The one rule every role applies (`scheduler`, `up`, config files):
        /// each within 0.01...1000000, and a heartbeat shorter than lost-after, else every
        /// worker would be marked lost between two heartbeats. `names` label them in the message.
        public static func timingProblem(heartbeat: Double?, lostAfter: Double?,
                                         names: (heartbeat: String, lostAfter: String) = ("--heartbeat", "--lost-after")) -> String? {
            let h = heartbeat ?? defaultHeartbeatSeconds, l = lostAfter ?? defaultLostAfterSeconds
            for (name, value) in [(names.heartbeat, h), (names.lostAfter, l)] where !(0.01...1_000_000).contains(value) {
                return "\(name) must be between 0.01 and 1000000 seconds, got \(value)"
            }
            func seconds(_ v: Double) -> String { v == v.rounded() ? String(Int(v)) : String(v) }
            guard h < l else {
                return "\(names.heartbeat) (\(seconds(h)) s) must be shorter than \(names.lostAfter) (\(seconds(l)) s)"
            }
            return nil
        }
    }

    public struct WorkerSection: Sendable, Equatable {
        public var slots: Int?
        /// HOST:PORT of this worker's HTTP listener serving its `/metrics` (off when absent;
        /// `--http-listen` overrides it).
        public var httpListen: String?
        /// The certificate and key that listener serves over HTTPS (`--http-tls-cert`, `--http-tls-key`).
        public var httpTlsCert: String?
        public var httpTlsKey: String?
        public var labels: [String: String]?
        public var dataDir: String?
        public var workDir: String?
        public var tokenFile: String?
        public var tlsCert: String?
        public var tlsKey: String?
        public var tlsCa: String?
        /// Names of the runtimes this worker runs (default: all defined).
        public var runtimes: [String]?
        public var allowCommands: Bool?
        public var workRoot: String?
        /// Bytes of the worker's blob cache, in MiB (`--blob-cache-mb`).
        public var blobCacheMB: Int?
        /// Git checkouts at once (`--checkout-slots`).
        public var checkoutSlots: Int?
        public var maxArtifactBytesPerTask: Int64?
        /// `retention.maxAgeHours` and `retention.maxGiB` (`--retention-hours`, `--retention-gib`).
        public var retentionMaxAgeHours: Double?
        public var retentionMaxGiB: Double?
        /// `prefetchHold` (seconds, `--prefetch-hold`), kept in milliseconds.
        public var prefetchHoldMs: Int64?
    }

    public var scheduler = SchedulerSection()
    public var workers: [String: WorkerSection] = [:]
    /// Runtime definitions, by name.
    public var runtimes: [String: RuntimeDefinition] = [:]
    /// The cluster's layer of timeouts (seconds).
    public var timeouts = TimeoutPolicy.Overrides()
    public var contextInlineMax: Int?
    /// Default for workers without their own `allowCommands`.
    public var allowCommands: Bool?

    public init() {}

    /// The most bytes of a cluster file read (a few KiB in practice; `/dev/zero` is refused).
    public static let maxFileBytes = 16 * 1024 * 1024

    public static func load(path: String) throws -> ClusterFile {
        let bytes: [UInt8]
        do { bytes = try BoundedFile.read(path, limit: maxFileBytes) } catch {
            throw ConfigError("cannot read config file '\(path)': \(error)")
        }
        return try parse(Data(bytes), name: path)
    }

    public static func parse(_ data: Data, name: String = "config") throws -> ClusterFile {
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: data) } catch {
            throw ConfigError("\(name): not valid JSON (\(error.localizedDescription))")
        }
        guard let root = object as? [String: Any] else { throw ConfigError("\(name): the top level must be an object") }
        try checkKeys(root, allowed: ["scheduler", "workers", "runtimes", "timeouts", "contextInlineMax", "allowCommands", "comment"], at: name)
        var file = ClusterFile()
        if let t = root["timeouts"] { file.timeouts = try timeouts(t, at: "\(name): timeouts") }
        if let n = try number(root, "contextInlineMax", name) {
            // Bounded above too: Int(n) traps past Int.max.
            guard n >= 0, n <= 1_000_000_000, n == n.rounded() else {
                throw ConfigError("\(name): contextInlineMax must be a whole number from 0 to 1000000000")
            }
            file.contextInlineMax = Int(n)
        }
        file.allowCommands = try bool(root, "allowCommands", name)
        if let r = root["runtimes"] {
            guard let r = r as? [String: Any] else { throw ConfigError("\(name): 'runtimes' must be an object keyed by runtime name") }
            for (runtimeName, value) in r {
                file.runtimes[runtimeName] = try runtime(runtimeName, value, at: "\(name): runtimes.\(runtimeName)")
            }
        }
        if let s = root["scheduler"] {
            guard let s = s as? [String: Any] else { throw ConfigError("\(name): 'scheduler' must be an object") }
            let at = "\(name): scheduler"
            try checkKeys(s, allowed: ["listen", "address", "httpListen", "stateDir", "tokenFile", "tokens", "lostAfterSeconds", "heartbeatSeconds",
                                       "placement", "modelLimits", "maxInputBytesPerTask", "retention", "comment", "prefetch",
                                       "tlsCert", "tlsKey", "tlsCa", "httpTlsCert", "httpTlsKey"], at: at)
            file.scheduler.retention = try schedulerRetention(s, at: at)
            file.scheduler.placement = try string(s, "placement", at)
            if let p = file.scheduler.placement, p != "spread" && p != "binpack" {
                throw ConfigError("\(at).placement must be 'spread' or 'binpack', got '\(p)'")
            }
            if let n = try number(s, "prefetch", at) {
                guard n >= 0, n <= 64, n == n.rounded() else { throw ConfigError("\(at).prefetch must be a whole number from 0 to 64") }
                file.scheduler.prefetch = Int(n)
            }
            if let limits = s["modelLimits"] {
                guard let limits = limits as? [String: Any] else { throw ConfigError("\(at).modelLimits must map model names to numbers") }
                var parsed: [String: Int] = [:]
                for (model, _) in limits {
                    guard let n = try number(limits, model, "\(at).modelLimits"), n >= 0, n <= 1_000_000_000, n == n.rounded() else {
                        throw ConfigError("\(at).modelLimits.\(model) must be a whole number from 0 to 1000000000")
                    }
                    parsed[model] = Int(n)
                }
                file.scheduler.modelLimits = parsed
            }
            file.scheduler.listen = try string(s, "listen", at)
            file.scheduler.address = try string(s, "address", at)
            file.scheduler.httpListen = try string(s, "httpListen", at)
            file.scheduler.httpTlsCert = try string(s, "httpTlsCert", at)
            file.scheduler.httpTlsKey = try string(s, "httpTlsKey", at)
            file.scheduler.stateDir = try string(s, "stateDir", at)
            file.scheduler.tokenFile = try string(s, "tokenFile", at)
            if let t = s["tokens"] {
                guard let t = t as? [String: Any] else { throw ConfigError("\(at).tokens must be an object: {\"worker\": FILE, \"submit\": FILE, \"read\": FILE}") }
                try checkKeys(t, allowed: ["worker", "submit", "read", "comment"], at: "\(at).tokens")
                file.scheduler.workerTokenFile = try string(t, "worker", "\(at).tokens")
                file.scheduler.submitTokenFile = try string(t, "submit", "\(at).tokens")
                file.scheduler.readTokenFile = try string(t, "read", "\(at).tokens")
            }
            file.scheduler.lostAfterSeconds = try number(s, "lostAfterSeconds", at)
            file.scheduler.heartbeatSeconds = try number(s, "heartbeatSeconds", at)
            if let n = try number(s, "maxInputBytesPerTask", at) {
                guard n >= 0, n <= Double(Bounds.bytes.upperBound), n == n.rounded() else {
                    throw ConfigError("\(at).maxInputBytesPerTask must be a whole number of bytes from 0 to \(Bounds.bytes.upperBound)")
                }
                file.scheduler.maxInputBytesPerTask = Int64(n)
            }
            // The file is named once, before the sentence (not before each key in it).
            if let problem = SchedulerSection.timingProblem(heartbeat: file.scheduler.heartbeatSeconds,
                                                            lostAfter: file.scheduler.lostAfterSeconds,
                                                            names: ("scheduler.heartbeatSeconds", "scheduler.lostAfterSeconds")) {
                throw ConfigError("\(name): \(problem)")
            }
        }
        if let w = root["workers"] {
            guard let w = w as? [String: Any] else { throw ConfigError("\(name): 'workers' must be an object keyed by worker name") }
            for (workerName, value) in w {
                let at = "\(name): workers.\(workerName)"
                if let problem = WorkerName.problem(with: workerName) { throw ConfigError("\(name): workers: \(problem)") }
                guard let v = value as? [String: Any] else { throw ConfigError("\(at) must be an object") }
                try checkKeys(v, allowed: ["slots", "labels", "dataDir", "workDir", "tokenFile", "runtimes", "allowCommands",
                                           "workRoot", "blobCacheMB", "checkoutSlots", "maxArtifactBytesPerTask", "retention", "httpListen", "comment",
                                           "prefetchHold", "tlsCert", "tlsKey", "tlsCa", "httpTlsCert", "httpTlsKey"], at: at)
                var section = WorkerSection()
                if let slots = try number(v, "slots", at) {
                    guard slots == slots.rounded(), slots >= 1, slots <= 100_000 else {
                        throw ConfigError("\(at).slots must be a whole number from 1 to 100000")
                    }
                    section.slots = Int(slots)
                }
                if let labels = v["labels"] {
                    guard let labels = labels as? [String: String] else { throw ConfigError("\(at).labels must map names to strings") }
                    section.labels = labels
                }
                section.dataDir = try string(v, "dataDir", at)
                if let text = try string(v, "httpListen", at) {
                    guard parseHostPort(text) != nil else { throw ConfigError("\(at).httpListen wants HOST:PORT, got '\(text)'") }
                    section.httpListen = text
                }
                section.workDir = try string(v, "workDir", at)
                section.tokenFile = try string(v, "tokenFile", at)
                section.tlsCert = try string(v, "tlsCert", at)
                section.tlsKey = try string(v, "tlsKey", at)
                section.tlsCa = try string(v, "tlsCa", at)
                section.httpTlsCert = try string(v, "httpTlsCert", at)
                section.httpTlsKey = try string(v, "httpTlsKey", at)
                section.workRoot = try string(v, "workRoot", at)
                if section.workDir != nil && section.workRoot != nil {
                    throw ConfigError("\(at): workDir and workRoot exclude each other (one shared directory, or one per task under a root)")
                }
                section.allowCommands = try bool(v, "allowCommands", at)
                if let mb = try number(v, "blobCacheMB", at) {
                    guard mb == mb.rounded(), mb >= 1, mb <= Double(WorkerConfig.maxBlobCacheMB) else {
                        throw ConfigError("\(at).blobCacheMB must be a whole number from 1 to \(WorkerConfig.maxBlobCacheMB)")
                    }
                    section.blobCacheMB = Int(mb)
                }
                if let slots = try number(v, "checkoutSlots", at) {
                    guard slots == slots.rounded(), slots >= 1, slots <= Double(WorkerConfig.maxCheckoutSlots) else {
                        throw ConfigError("\(at).checkoutSlots must be a whole number from 1 to \(WorkerConfig.maxCheckoutSlots)")
                    }
                    section.checkoutSlots = Int(slots)
                }
                if let bytes = try number(v, "maxArtifactBytesPerTask", at) {
                    guard bytes == bytes.rounded(), bytes >= 0, bytes <= Double(Bounds.bytes.upperBound) else {
                        throw ConfigError("\(at).maxArtifactBytesPerTask must be a whole number of bytes from 0 to \(Bounds.bytes.upperBound)")
                    }
                    section.maxArtifactBytesPerTask = Int64(bytes)
                }
                if let seconds = try number(v, "prefetchHold", at) {
                    let ms = (seconds * 1_000).rounded()
                    guard ms.isFinite, ms >= 1, ms <= Double(WorkerConfig.maxPrefetchHoldMs) else {
                        throw ConfigError("\(at).prefetchHold must be 0.001 to \(WorkerConfig.maxPrefetchHoldMs / 1_000) seconds")
                    }
                    section.prefetchHoldMs = Int64(ms)
                }
                try retention(v, into: &section, at: at)
                if let names = v["runtimes"] {
                    guard let names = names as? [String] else { throw ConfigError("\(at).runtimes must be a list of runtime names") }
                    section.runtimes = names
                }
                file.workers[workerName] = section
            }
        }
        for (workerName, section) in file.workers {
            for runtime in section.runtimes ?? [] where file.runtimes[runtime] == nil {
                throw ConfigError("\(name): workers.\(workerName).runtimes names '\(runtime)', which 'runtimes' does not define")
            }
        }
        return file
    }

    /// `scheduler.retention`: `{"inMemoryFinished": 5000, "maxFinishedTasks": 100000,
    /// "maxAgeHours": 168}`, each optional (its default then).
    private static func schedulerRetention(_ s: [String: Any], at: String) throws -> SchedulerRetention? {
        guard let r = s["retention"] else { return nil }
        let rat = "\(at).retention"
        guard let r = r as? [String: Any] else { throw ConfigError("\(rat) must be an object") }
        try checkKeys(r, allowed: ["inMemoryFinished", "maxFinishedTasks", "maxAgeHours", "comment"], at: rat)
        let memory = try number(r, "inMemoryFinished", rat), count = try number(r, "maxFinishedTasks", rat)
        let hours = try number(r, "maxAgeHours", rat)
        if let problem = SchedulerRetention.problem(inMemoryFinished: memory, maxFinishedTasks: count, maxAgeHours: hours, at: rat) {
            throw ConfigError(problem)
        }
        var retention = SchedulerRetention()
        if let memory { retention.inMemoryFinished = Int(memory) }
        if let count { retention.maxFinishedTasks = Int(count) }
        if let hours { retention.maxAgeHours = hours }
        return retention
    }

    /// `workers.NAME.retention`: `{"maxAgeHours": 24, "maxGiB": 10}`, both optional.
    private static func retention(_ v: [String: Any], into section: inout WorkerSection, at: String) throws {
        guard let r = v["retention"] else { return }
        guard let r = r as? [String: Any] else { throw ConfigError("\(at).retention must be an object") }
        let rat = "\(at).retention"
        try checkKeys(r, allowed: ["maxAgeHours", "maxGiB", "comment"], at: rat)
        let hours = try number(r, "maxAgeHours", rat), gib = try number(r, "maxGiB", rat)
        if let problem = WorkerRetention.Limits.problem(maxAgeHours: hours, maxGiB: gib, what: ("\(rat).maxAgeHours", "\(rat).maxGiB")) {
            throw ConfigError(problem)
        }
        section.retentionMaxAgeHours = hours
        section.retentionMaxGiB = gib
    }

    /// The runtimes a worker of this file runs.
    public func runtimes(forWorker worker: String?) -> [RuntimeDefinition] {
        let names = worker.flatMap { workers[$0]?.runtimes } ?? runtimes.keys.sorted()
        return names.compactMap { runtimes[$0] }
    }

    private static func runtime(_ name: String, _ value: Any, at: String) throws -> RuntimeDefinition {
        guard let r = value as? [String: Any] else { throw ConfigError("\(at) must be an object") }
        try checkKeys(r, allowed: ["command", "promptOnStdin", "defaultModel", "env", "health", "timeouts", "artifacts", "comment"], at: at)
        guard let command = r["command"] as? [String], !command.isEmpty, !command[0].isEmpty else {
            throw ConfigError("\(at).command must be a non-empty list of strings (a template, e.g. [\"claude\", \"-p\", \"--model\", \"{model}\"])")
        }
        var def = RuntimeDefinition(name: name, command: command)
        if let unknown = def.unknownPlaceholder {
            throw ConfigError("\(at).command has an unknown placeholder {\(unknown)} (known: \(RuntimeDefinition.placeholders.sorted().map { "{\($0)}" }.joined(separator: ", ")))")
        }
        def.promptOnStdin = try bool(r, "promptOnStdin", at) ?? true
        def.defaultModel = try string(r, "defaultModel", at)
        if let env = r["env"] {
            guard let env = env as? [String: String] else { throw ConfigError("\(at).env must map names to strings") }
            for key in env.keys.sorted() { try verbatim(env[key]!, at: "\(at).env.\(key)", runtime: at) }
            def.env = env
        }
        if let t = r["timeouts"] { def.timeouts = try timeouts(t, at: "\(at).timeouts") }
        if let a = r["artifacts"] {
            guard let patterns = a as? [String], patterns.count <= BlobLimits.maxArtifactPatterns else {
                throw ConfigError("\(at).artifacts must be a list of at most \(BlobLimits.maxArtifactPatterns) glob patterns")
            }
            for pattern in patterns {
                if let problem = ArtifactGlob.problem(pattern) { throw ConfigError("\(at).artifacts: \(problem)") }
            }
            def.artifacts = patterns
        }
        if let h = r["health"] {
            let hat = "\(at).health"
            guard let h = h as? [String: Any] else { throw ConfigError("\(hat) must be an object") }
            try checkKeys(h, allowed: ["command", "expect", "timeoutSeconds", "intervalSeconds", "retrySeconds", "comment"], at: hat)
            guard let hc = h["command"] as? [String], !hc.isEmpty, !hc[0].isEmpty else {
                throw ConfigError("\(hat).command must be a non-empty list of strings")
            }
            for part in hc { try verbatim(part, at: "\(hat).command", runtime: at) }
            var check = HealthCheckSpec(command: hc, expect: try string(h, "expect", hat))
            func ms(_ key: String) throws -> Int64? {
                guard let v = try number(h, key, hat) else { return nil }
                guard v > 0, v <= 86_400 * 30 else { throw ConfigError("\(hat).\(key) must be more than 0 seconds") }
                return Int64((v * 1000).rounded())
            }
            check.timeoutMs = try ms("timeoutSeconds") ?? check.timeoutMs
            check.intervalMs = try ms("intervalSeconds") ?? check.intervalMs
            check.retryMs = try ms("retrySeconds") ?? check.retryMs
            def.health = check
        }
        return def
    }

    /// Only a runtime's `command` is a template: a `{name}` anywhere else (`env`, the health
    /// command, which runs for no task) would reach the process verbatim, so it is refused
    /// at load like a misspelled placeholder in `command`.
    private static func verbatim(_ text: String, at: String, runtime: String) throws {
        guard let name = RuntimeDefinition.placeholderNames(in: text).first else { return }
        let known = RuntimeDefinition.placeholders.contains(name) ? "" : "an unknown placeholder, and "
        throw ConfigError("\(at) has {\(name)}: \(known)only \(runtime.split(separator: " ").last ?? "").command is a template; this field is used as written")
    }

    private static func timeouts(_ value: Any, at: String) throws -> TimeoutPolicy.Overrides {
        guard let t = value as? [String: Any] else { throw ConfigError("\(at) must be an object of seconds") }
        try checkKeys(t, allowed: ["simple", "moderate", "complex", "max", "extendBy", "extendWithin", "activityWindow",
                                   "minBursts", "burstGap", "silenceWarn", "silenceKill", "killGrace", "comment"], at: at)
        func seconds(_ key: String) throws -> Double? {
            guard let v = try number(t, key, at) else { return nil }
            guard v >= 0, v <= TaskSpec.maxDurationSeconds else { throw ConfigError("\(at).\(key) must be 0 to 2592000 seconds") }
            return v
        }
        var o = TimeoutPolicy.Overrides()
        o.simple = try seconds("simple")
        o.moderate = try seconds("moderate")
        o.complex = try seconds("complex")
        o.maxTimeout = try seconds("max")
        o.extendBy = try seconds("extendBy")
        o.extendWithin = try seconds("extendWithin")
        o.activityWindow = try seconds("activityWindow")
        o.burstGap = try seconds("burstGap")
        o.silenceWarn = try seconds("silenceWarn")
        o.silenceKill = try seconds("silenceKill")
        o.killGrace = try seconds("killGrace")
        if let n = try number(t, "minBursts", at) {
            guard n >= 0, n <= 1_000_000, n == n.rounded() else { throw ConfigError("\(at).minBursts must be a whole number from 0 to 1000000") }
            o.minBursts = Int(n)
        }
        return o
    }

    private static func bool(_ o: [String: Any], _ key: String, _ at: String) throws -> Bool? {
        guard let v = o[key] else { return nil }
        guard let n = v as? NSNumber, String(cString: n.objCType) == "c" else { throw ConfigError("\(at).\(key) must be true or false") }
        return n.boolValue
    }

    private static func checkKeys(_ object: [String: Any], allowed: Set<String>, at: String) throws {
        if let unknown = object.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw ConfigError("\(at): unknown key '\(unknown)' (known: \(allowed.subtracting(["comment"]).sorted().joined(separator: ", ")))")
        }
    }

    private static func string(_ o: [String: Any], _ key: String, _ at: String) throws -> String? {
        guard let v = o[key] else { return nil }
        guard let s = v as? String else { throw ConfigError("\(at).\(key) must be a string") }
        return s
    }

    private static func number(_ o: [String: Any], _ key: String, _ at: String) throws -> Double? {
        guard let v = o[key] else { return nil }
        // JSON true/false also arrive as NSNumber; their objCType is "c".
        guard let n = v as? NSNumber, String(cString: n.objCType) != "c" else { throw ConfigError("\(at).\(key) must be a number") }
        return n.doubleValue
    }
}

public struct ConfigError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

extension WorkerConfig {
    /// The engine settings `file` gives worker `worker`: its runtimes, whether it runs plain
    /// commands, its work root, the context inline limit and the cluster's timeouts.
    public mutating func apply(_ file: ClusterFile, worker: String?) {
        let entry = worker.flatMap { file.workers[$0] }
        runtimes = file.runtimes(forWorker: worker)
        allowsCommands = entry?.allowCommands ?? file.allowCommands ?? true
        workRootDir = entry?.workRoot ?? workRootDir
        if let mb = entry?.blobCacheMB { blobCacheBytes = Int64(mb) << 20 }
        checkoutSlots = entry?.checkoutSlots ?? checkoutSlots
        maxArtifactBytesPerTask = entry?.maxArtifactBytesPerTask ?? maxArtifactBytesPerTask
        prefetchHoldMs = entry?.prefetchHoldMs ?? prefetchHoldMs
        if entry?.retentionMaxAgeHours != nil || entry?.retentionMaxGiB != nil {
            retention = WorkerRetention.Limits(maxAgeHours: entry?.retentionMaxAgeHours ?? Double(retention.maxAgeMs) / 3_600_000,
                                               maxGiB: entry?.retentionMaxGiB ?? Double(retention.maxBytes) / 1_073_741_824)
        }
        contextInlineMax = file.contextInlineMax ?? contextInlineMax
        if let (host, port) = entry?.httpListen.flatMap(parseHostPort) { (httpHost, httpPort) = (host, port) }
        supervisor.policy = supervisor.policy.applying(file.timeouts)
    }
}
