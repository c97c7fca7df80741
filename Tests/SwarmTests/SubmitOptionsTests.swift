import Foundation
import Testing
import SwarmClient
import SwarmProtocol
@testable import swarm

/// `swarm submit` flags into a `TaskSpec`: parsing, files, and the one-line usage errors.
@Suite struct SubmitOptionsTests {
    /// Files the tests' reader knows; anything else does not exist.
    static let files = [
        "prompt.md": "Fix the bug.\n",
        "ctx.json": #"{"repo": "swarm", "paths": ["a", "b"], "depth": 2}"#,
        "scalar.json": "42",
        "broken.json": "{not json",
    ]

    static func read(_ path: String, limit: Int) throws -> String {
        guard let text = files[path] else { throw FileReadError("no such file") }
        return text
    }

    static func spec(_ arguments: [String]) throws -> TaskSpec {
        try SubmitCommand.parse(arguments).taskSpec(readFile: read)
    }

    /// The usage error a set of flags gets, from parsing or from building the spec.
    static func problem(_ arguments: [String]) -> String? {
        do {
            _ = try spec(arguments)
            return nil
        } catch let error as TaskOptionsError {
            return error.description
        } catch {
            return SubmitCommand.message(for: error)
        }
    }

    @Test func everyAgentFlagMapsToItsField() throws {
        let spec = try Self.spec([
            "--id", "t1", "--runtime", "claude", "--model", "sonnet", "--prompt-file", "prompt.md",
            "--objective", "green tests", "--context-file", "ctx.json", "--requirement", "no new deps",
            "--requirement", "keep the API", "--complexity", "7", "--timeout", "90.5", "--max-timeout", "600",
            "--extend-by", "60", "--extend-within", "30", "--activity-window", "45", "--min-bursts", "3",
            "--burst-gap", "0.5", "--silence-warn", "120", "--silence-kill", "300", "--kill-grace", "2.5", "--env", "A=1", "--env", "B=x=y",
            "--label", "team=core", "--parent", "p-1", "--constraint", "gpu=yes", "--constraint", "zone=eu",
            "--priority", "-3",
        ])
        #expect(spec.id == "t1")
        #expect(spec.command.isEmpty)
        #expect(spec.runtime == "claude")
        #expect(spec.model == "sonnet")
        #expect(spec.prompt == "Fix the bug.\n")
        #expect(spec.objective == "green tests")
        #expect(spec.context == .object(["repo": .string("swarm"), "paths": .array([.string("a"), .string("b")]), "depth": .number(2)]))
        #expect(spec.requirements == ["no new deps", "keep the API"])
        #expect(spec.complexity == "7")
        #expect(spec.timeout == 90.5)
        #expect(spec.maxTimeout == 600)
        #expect(spec.extendBy == 60)
        #expect(spec.extendWithin == 30)
        #expect(spec.activityWindow == 45)
        #expect(spec.minBursts == 3)
        #expect(spec.burstGap == 0.5)
        #expect(spec.silenceWarn == 120)
        #expect(spec.silenceKill == 300)
        #expect(spec.killGrace == 2.5)
        #expect(spec.env == ["A": "1", "B": "x=y"])
        #expect(spec.labels == ["team": "core"])
        #expect(spec.parent == "p-1")
        #expect(spec.constraints == ["gpu": "yes", "zone": "eu"])
        #expect(spec.priority == -3)
    }

    @Test func plainCommandKeepsItsArgumentsAndLeavesTheRestUnset() throws {
        let spec = try Self.spec(["--", "sh", "-c", "echo --timeout"])
        #expect(spec == TaskSpec(command: ["sh", "-c", "echo --timeout"]))
        let inline = try Self.spec(["--runtime", "claude", "--prompt", "hello", "--complexity", "simple"])
        #expect(inline.prompt == "hello")
        #expect(inline.complexity == "simple")
        #expect(inline.requirements == nil && inline.env == nil && inline.labels == nil && inline.constraints == nil)
    }

    @Test func contextFileTakesAnyJSONValue() throws {
        #expect(try Self.spec(["--runtime", "r", "--prompt", "p", "--context-file", "scalar.json"]).context == .number(42))
    }

    @Test func usageErrorsAreOneClearSentence() {
        let cases: [([String], String)] = [
            (["--runtime", "claude", "--prompt", "a", "--prompt-file", "prompt.md"], "--prompt and --prompt-file are mutually exclusive"),
            (["--runtime", "claude", "--", "ls"], "a --runtime task takes no command after --"),
            (["--model", "sonnet"], "missing command"),
            (["--runtime", "claude", "--prompt", "p", "--context-file", "broken.json"], "context file 'broken.json' is not JSON"),
            (["--runtime", "claude", "--prompt", "p", "--context-file", "gone.json"], "cannot read --context-file 'gone.json': no such file"),
            (["--runtime", "claude", "--prompt-file", "gone.md"], "cannot read --prompt-file 'gone.md': no such file"),
            (["--runtime", "claude", "--prompt", "p", "--complexity", "hard"], "complexity must be simple, moderate, complex"),
            (["--runtime", "claude", "--prompt", "p", "--timeout", "10", "--max-timeout", "5"], "is over maxTimeout"),
            (["--runtime", "claude", "--prompt", "p", "--timeout", "-1"], "timeout must be a number of seconds"),
            (["--runtime", "claude", "--prompt", "p", "--silence-kill", "0"], "silenceKill must be more than 0 seconds"),
            (["--runtime", "bad name", "--prompt", "p"], "invalid runtime name"),
            (["--runtime", "claude", "--prompt", "p", "--model", "two words"], "invalid model name"),
            (["--runtime", "claude", "--prompt", "p", "--parent", "../x"], "parent: task id"),
            (["--env", "NOVALUE", "--", "true"], "--env wants KEY=VALUE, got 'NOVALUE'"),
            (["--constraint", "=v", "--", "true"], "--constraint wants KEY=VALUE"),
            (["--label", "x", "--", "true"], "--label wants KEY=VALUE"),
            (["--id", "a/b", "--", "true"], "may contain only"),
            (["--file", "t.jsonl", "--", "true"], "--file takes no command"),
            (["--file", "t.jsonl", "--priority", "1"], "--file takes no task options"),
            (["--file", "t.jsonl", "--runtime", "claude"], "--file takes no task options"),
        ]
        for (arguments, expected) in cases {
            let problem = Self.problem(arguments)
            #expect(problem?.contains(expected) == true, "\(arguments): \(problem ?? "accepted")")
            #expect(problem?.contains("\n") != true)
        }
    }

    /// Issue 11: the work-in/out flags, repeatable where the issue says so.
    @Test func workFlagsMapToTheirFields() throws {
        let spec = try Self.spec(["--input", "src", "--input", "a:b:c", "--artifact", "out/*", "--artifact", "log.txt",
                                  "--repo", "/srv/r.git", "--ref", "main", "--", "make"])
        #expect(spec.inputs == ["src", "a:b:c"])
        #expect(spec.inputBlobs == nil)
        #expect(spec.artifacts == ["out/*", "log.txt"])
        #expect(spec.repo == "/srv/r.git" && spec.ref == "main")
        #expect(try Self.spec(["--workdir", "/shared/x", "--artifact", "r.txt", "--", "true"]).workdir == "/shared/x")
        #expect(try SubmitCommand.parse(["--max-input-mb", "1024", "--", "true"]).maxInputMb == 1024)
        #expect(try SubmitCommand.parse(["--file", "t.jsonl", "--max-input-mb", "1"]).hasTaskOptions == false)
    }

    @Test func workFlagErrorsAreOneSentence() {
        let cases: [([String], String)] = [
            (["--workdir", "rel", "--", "true"], "workdir must be an absolute path"),
            (["--workdir", "/w", "--input", "x", "--", "true"], "workdir and inputs do not go together"),
            (["--workdir", "/w", "--repo", "/r", "--", "true"], "workdir and repo do not go together"),
            (["--ref", "main", "--", "true"], "ref goes with repo"),
            (["--repo", "/r", "--ref", "-x", "--", "true"], "starts with '-'"),
            (["--artifact", "/abs", "--", "true"], "is absolute"),
            (["--file", "t.jsonl", "--input", "x"], "--file takes no task options"),
            (["--file", "t.jsonl", "--artifact", "x"], "--file takes no task options"),
            (["--file", "t.jsonl", "--workdir", "/x"], "--file takes no task options"),
            (["--file", "t.jsonl", "--repo", "/x"], "--file takes no task options"),
            (["--max-input-mb", "0", "--", "true"], "--max-input-mb must be 1 to 1048576, got 0"),
            (["--max-input-mb", "1048577", "--", "true"], "--max-input-mb must be 1 to 1048576"),
        ]
        for (arguments, expected) in cases {
            let problem = Self.problem(arguments)
            #expect(problem?.contains(expected) == true, "\(arguments): \(problem ?? "accepted")")
            #expect(problem?.contains("\n") != true)
        }
    }

    @Test func fileAloneParsesWithWaitAndJSON() throws {
        let command = try SubmitCommand.parse(["--file", "t.jsonl", "--wait", "--json"])
        #expect(command.file == "t.jsonl")
        #expect(command.wait && command.json)
        #expect(!command.hasTaskOptions)
    }
}
