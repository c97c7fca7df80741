import Foundation
import SwarmProtocol

/// Tree cancels under way (`swarm cancel --recursive` of a tree larger than a slice): one
/// `meta` row, `tree_cancels`, holding their roots as a JSON array, saved in the turn that
/// begins one and in the turn of its last slice. A row, not a table, so no schema change: a
/// database without it has none under way, and an older swarm ignores it.
extension TaskStore {
    static let treeCancelsKey = "tree_cancels"

    /// Replaces the saved roots (inside the turn's transaction, `write(_:at:)`).
    func saveTreeCancels(_ roots: [String]) throws(SQLiteError) {
        let text = String(decoding: (try? JSONEncoder().encode(roots)) ?? Data("[]".utf8), as: UTF8.self)
        let upsert = try statement("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")
        defer { upsert.reset() }
        try upsert.run([.text(Self.treeCancelsKey), .text(text)])
    }

    /// The roots as last saved; none when never saved. A value that is not a JSON array of
    /// strings (edited by hand) reads as none: at worst the rest of a tree is queued again, as
    /// before the roots were saved.
    public func loadTreeCancels() -> [String] {
        guard let statement = try? statement("SELECT value FROM meta WHERE key = ?1") else { return [] }
        defer { statement.reset() }
        guard (try? statement.bindAll([.text(Self.treeCancelsKey)])) != nil, (try? statement.step()) == true,
              let text = statement.string(0),
              let roots = try? JSONDecoder().decode([String].self, from: Data(text.utf8)) else { return [] }
        return Array(roots.prefix(10_000))
    }
}
