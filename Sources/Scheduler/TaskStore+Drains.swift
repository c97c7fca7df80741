import Foundation
import SwarmProtocol

/// Drained workers (`swarm drain`, `swarm undrain`): one `meta` row, `drained_nodes`, holding
/// the sorted names as a JSON array. A row, not a table, so no schema change: a database
/// without it has no drained worker, and an older swarm ignores it.
extension TaskStore {
    static let drainedKey = "drained_nodes"

    /// Replaces the saved set (inside the turn's transaction, `write(_:at:)`).
    func saveDrained(_ names: [String]) throws(SQLiteError) {
        let text = String(decoding: (try? JSONEncoder().encode(names)) ?? Data("[]".utf8), as: UTF8.self)
        let upsert = try statement("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")
        defer { upsert.reset() }
        try upsert.run([.text(Self.drainedKey), .text(text)])
    }

    /// The drained workers' names as last saved; none when never saved. A value that is not a
    /// JSON array of valid worker names (edited by hand) is skipped name by name, never fatal:
    /// at worst a worker comes back ready.
    public func loadDrained() -> [String] {
        guard let statement = try? statement("SELECT value FROM meta WHERE key = ?1") else { return [] }
        defer { statement.reset() }
        guard (try? statement.bindAll([.text(Self.drainedKey)])) != nil, (try? statement.step()) == true,
              let text = statement.string(0),
              let names = try? JSONDecoder().decode([String].self, from: Data(text.utf8)) else { return [] }
        return names.filter { WorkerName.problem(with: $0) == nil }
    }
}
