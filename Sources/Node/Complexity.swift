import SwarmProtocol

/// Scores how complex a task is from its objective, requirements and context, with the
/// original coordinator's weights but matching whole words only (the original matched
/// substrings, so "authentication" counted as "then"). Each rule counts once:
///
/// | rule | words (any form listed) | points |
/// |---|---|---|
/// | file operations | file(s), read, write, edit, modify, delete, rename, move, copy, directory, folder | +2 |
/// | more than 3 requirements | - | +2 |
/// | delegation / parallel | spawn, coordinate, delegate, parallel, parallelize, orchestrate, subagent(s) | +4 |
/// | research | research, investigate, analyze, analyse, explore, survey | +3 |
/// | implementation | implement, create, build, develop | +3 |
/// | context over 1,000 characters | - | +1 |
/// | multi-step | multi-step, multistep, steps, phases, stages, workflow, pipeline | +2 |
/// | testing | test(s), testing, verify, validate | +2 |
///
/// Simple is 0-2 points, moderate 3-5, complex 6 and more.
public enum Complexity {
    struct Rule {
        let name: String
        let points: Int
        let words: Set<String>
    }

    static let rules: [Rule] = [
        Rule(name: "file operations", points: 2, words: ["file", "files", "read", "write", "edit", "modify", "delete",
                                                         "rename", "move", "copy", "directory", "folder"]),
        Rule(name: "delegation", points: 4, words: ["spawn", "coordinate", "delegate", "parallel", "parallelize",
                                                    "orchestrate", "subagent", "subagents"]),
        Rule(name: "research", points: 3, words: ["research", "investigate", "analyze", "analyse", "explore", "survey"]),
        Rule(name: "implementation", points: 3, words: ["implement", "create", "build", "develop"]),
        Rule(name: "multi-step", points: 2, words: ["multi-step", "multistep", "steps", "phases", "stages", "workflow", "pipeline"]),
        Rule(name: "testing", points: 2, words: ["test", "tests", "testing", "verify", "validate"]),
    ]

    /// The score and the rules that matched, in table order.
    public static func score(objective: String, requirements: [String], contextCharacters: Int) -> (score: Int, matched: [String]) {
        let words = self.words(in: ([objective] + requirements).joined(separator: " "))
        var score = 0
        var matched: [String] = []
        if let file = rules.first, !file.words.isDisjoint(with: words) { score += file.points; matched.append(file.name) }
        if requirements.count > 3 { score += 2; matched.append("more than 3 requirements") }
        for rule in rules.dropFirst() where !rule.words.isDisjoint(with: words) {
            score += rule.points
            matched.append(rule.name)
        }
        if contextCharacters > 1_000 { score += 1; matched.append("context over 1000 characters") }
        return (score, matched)
    }

    /// Lower-cased words: runs of letters and digits, with inner hyphens kept ("multi-step").
    static func words(in text: String) -> Set<String> {
        var words: Set<String> = []
        var current = ""
        func flush() {
            while current.hasSuffix("-") { current.removeLast() }
            if !current.isEmpty { words.insert(current) }
            current = ""
        }
        for ch in text.lowercased() {
            if ch.isLetter || ch.isNumber {
                current.append(ch)
            } else if ch == "-" && !current.isEmpty {
                current.append(ch)
            } else {
                flush()
            }
        }
        flush()
        return words
    }

    /// The level and score of a task: its own `complexity` when given, else computed.
    public static func assess(_ spec: TaskSpec) -> (level: ComplexityLevel, score: Int) {
        switch spec.complexity.flatMap(ComplexityInput.init) {
        case .level(let level)?:
            return (level, level == .simple ? 0 : level == .moderate ? 3 : 6)
        case .score(let score)?:
            return (ComplexityLevel(score: score), score)
        case nil:
            let contextCharacters = spec.context.map { $0.serialized.count } ?? 0
            let text = spec.objective ?? spec.prompt ?? ""
            let score = score(objective: text, requirements: spec.requirements ?? [], contextCharacters: contextCharacters).score
            return (ComplexityLevel(score: score), score)
        }
    }
}
