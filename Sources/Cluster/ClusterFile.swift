import Foundation

/// `cluster.json`: one file that describes a cluster, read by `swarm scheduler --config` and
/// `swarm worker --config --name N`. Command-line flags override what it says.
/// Unknown keys are errors, so a typo never silently falls back to a default.
public struct ClusterFile: Sendable, Equatable {
    public struct SchedulerSection: Sendable, Equatable {
        /// HOST:PORT the scheduler binds.
        public var listen: String?
        /// HOST:PORT workers and clients dial (the scheduler's name as others reach it).
        public var address: String?
        public var stateDir: String?
        public var tokenFile: String?
        public var lostAfterSeconds: Double?
        public var heartbeatSeconds: Double?
    }

    public struct WorkerSection: Sendable, Equatable {
        public var slots: Int?
        public var labels: [String: String]?
        public var dataDir: String?
        public var workDir: String?
        public var tokenFile: String?
    }

    public var scheduler = SchedulerSection()
    public var workers: [String: WorkerSection] = [:]

    public init() {}

    public static func load(path: String) throws -> ClusterFile {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError("cannot read config file '\(path)'")
        }
        return try parse(data, name: path)
    }

    public static func parse(_ data: Data, name: String = "config") throws -> ClusterFile {
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: data) } catch {
            throw ConfigError("\(name): not valid JSON (\(error.localizedDescription))")
        }
        guard let root = object as? [String: Any] else { throw ConfigError("\(name): the top level must be an object") }
        try checkKeys(root, allowed: ["scheduler", "workers", "comment"], at: name)
        var file = ClusterFile()
        if let s = root["scheduler"] {
            guard let s = s as? [String: Any] else { throw ConfigError("\(name): 'scheduler' must be an object") }
            let at = "\(name): scheduler"
            try checkKeys(s, allowed: ["listen", "address", "stateDir", "tokenFile", "lostAfterSeconds", "heartbeatSeconds", "comment"], at: at)
            file.scheduler.listen = try string(s, "listen", at)
            file.scheduler.address = try string(s, "address", at)
            file.scheduler.stateDir = try string(s, "stateDir", at)
            file.scheduler.tokenFile = try string(s, "tokenFile", at)
            file.scheduler.lostAfterSeconds = try number(s, "lostAfterSeconds", at)
            file.scheduler.heartbeatSeconds = try number(s, "heartbeatSeconds", at)
        }
        if let w = root["workers"] {
            guard let w = w as? [String: Any] else { throw ConfigError("\(name): 'workers' must be an object keyed by worker name") }
            for (workerName, value) in w {
                let at = "\(name): workers.\(workerName)"
                guard let v = value as? [String: Any] else { throw ConfigError("\(at) must be an object") }
                try checkKeys(v, allowed: ["slots", "labels", "dataDir", "workDir", "tokenFile", "comment"], at: at)
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
                section.workDir = try string(v, "workDir", at)
                section.tokenFile = try string(v, "tokenFile", at)
                file.workers[workerName] = section
            }
        }
        return file
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
