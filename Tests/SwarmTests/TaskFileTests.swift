import Foundation
import Testing
import SwarmClient
import SwarmProtocol

/// `swarm submit --file`: the JSONL parser, a pure function of text, base directory and reader.
@Suite struct TaskFileTests {
    /// Files under /base the reader knows (by absolute path, as the parser resolves them).
    static let files = [
        "/base/prompts/p1.md": "Refactor the parser.",
        "/base/ctx.json": #"{"k": [1, true, null]}"#,
        "/abs/ctx.json": #"["x"]"#,
        "/base/bad.json": "{{",
    ]

    static func parse(_ text: String) throws(TaskFileError) -> [TaskSpec] {
        try TaskFile.parse(text, fileName: "tasks.jsonl", baseDirectory: "/base") { path, _ in
            guard let text = files[path] else { throw FileReadError("no such file") }
            return text
        }
    }

    /// The error of a one-task file whose only line is `line` (line 1).
    static func error(_ line: String) -> String? {
        do {
            _ = try parse(line)
            return nil
        } catch {
            return error.description
        }
    }

    @Test func commandAndRuntimeLinesBecomeSpecsInOrder() throws {
        let specs = try Self.parse("""
            {"id": "a1", "command": ["true"]}
            {"runtime": "claude", "model": "sonnet", "prompt": "do it"}
            """)
        #expect(specs == [TaskSpec(id: "a1", command: ["true"]),
                          TaskSpec(runtime: "claude", model: "sonnet", prompt: "do it")])
    }

    @Test func everyFieldMapsToTheSpec() throws {
        let line = """
            {"id": "t-1", "env": {"A": "1"}, "runtime": "claude", "model": "opus", "promptFile": "prompts/p1.md", \
            "objective": "o", "contextFile": "ctx.json", "requirements": ["r1", "r2"], "complexity": 4, "timeout": 1.5, \
            "maxTimeout": 60, "extendBy": 10, "extendWithin": 5, "activityWindow": 20, "minBursts": 2, "silenceWarn": 30, \
            "burstGap": 2.5, "silenceKill": 50, "killGrace": 0.5, "labels": {"team": "x"}, "parent": "p", "constraints": ["gpu=1", "os=linux"], \
            "priority": -2}
            """
        let spec = try #require(try Self.parse(line).first)
        #expect(spec.id == "t-1")
        #expect(spec.env == ["A": "1"])
        #expect(spec.runtime == "claude")
        #expect(spec.model == "opus")
        #expect(spec.prompt == "Refactor the parser.")
        #expect(spec.objective == "o")
        #expect(spec.context == .object(["k": .array([.number(1), .bool(true), .null])]))
        #expect(spec.requirements == ["r1", "r2"])
        #expect(spec.complexity == "4")
        #expect(spec.timeout == 1.5)
        #expect(spec.maxTimeout == 60)
        #expect(spec.extendBy == 10)
        #expect(spec.extendWithin == 5)
        #expect(spec.activityWindow == 20)
        #expect(spec.minBursts == 2)
        #expect(spec.burstGap == 2.5)
        #expect(spec.silenceWarn == 30)
        #expect(spec.silenceKill == 50)
        #expect(spec.killGrace == 0.5)
        #expect(spec.labels == ["team": "x"])
        #expect(spec.parent == "p")
        #expect(spec.constraints == ["gpu": "1", "os": "linux"])
        #expect(spec.priority == -2)
    }

    @Test func synonymsAndAlternativeShapes() throws {
        let specs = try Self.parse("""
            {"runtime": "r", "prompt": "p", "requirement": "one", "label": {"a": "b"}, "constraint": {"zone": "eu"}, "complexity": "complex"}
            {"runtime": "r", "prompt": "p", "requirement": ["x", "y"], "context": {"inline": [1]}, "contextFile": null}
            {"runtime": "r", "prompt": "p", "contextFile": "/abs/ctx.json", "requirements": "single"}
            """)
        #expect(specs[0].requirements == ["one"])
        #expect(specs[0].labels == ["a": "b"])
        #expect(specs[0].constraints == ["zone": "eu"])
        #expect(specs[0].complexity == "complex")
        #expect(specs[1].requirements == ["x", "y"])
        #expect(specs[1].context == .object(["inline": .array([.number(1)])]))
        #expect(specs[2].context == .array([.string("x")]))
        #expect(specs[2].requirements == ["single"])
    }

    @Test func blankAndCommentLinesAreSkippedAndLinesNumberedAsInTheFile() {
        let text = "\n# header\n{\"command\": [\"true\"]}\n   \n\t# indented comment\r\n{\"command\": [\"true\"], \"nope\": 1}\n"
        #expect(throws: TaskFileError(file: "tasks.jsonl", line: 6, reason: "unknown field 'nope'")) { try Self.parse(text) }
        #expect((try? Self.parse("# only\n{\"command\": [\"a\"]}\r\n\n"))?.count == 1)
    }

    @Test func badLinesNameTheirLineAndReason() {
        let cases: [(String, String)] = [
            ("{\"command\": [\"true\"]", "not valid JSON"),
            ("[\"true\"]", "a task is a JSON object, got an array"),
            ("\"x\"", "a task is a JSON object, got a string"),
            ("{\"command\": \"true\"}", "'command' must be an array of strings, got a string"),
            ("{\"command\": [\"true\", 1]}", "'command' must be an array of strings, got a number"),
            ("{\"command\": [\"true\"], \"timeout\": \"30\"}", "'timeout' must be a number of seconds, got a string"),
            ("{\"command\": [\"true\"], \"priority\": 1.5}", "'priority' must be a whole number, got 1.5"),
            ("{\"command\": [\"true\"], \"minBursts\": true}", "'minBursts' must be a whole number, got a boolean"),
            ("{\"command\": [\"true\"], \"env\": {\"A\": 1}}", "'env.A' must be a string, got a number"),
            ("{\"command\": [\"true\"], \"labels\": [\"a=b\"]}", "'labels' must be an object of strings, got an array"),
            ("{\"command\": [\"true\"], \"constraints\": \"a=b\"}", "'constraints' must be an object or an array"),
            ("{\"command\": [\"true\"], \"constraints\": [\"ab\"]}", "'constraints' wants KEY=VALUE, got 'ab'"),
            ("{\"command\": [\"true\"], \"complexity\": 2.5}", "'complexity' must be simple, moderate, complex or a whole number"),
            ("{\"command\": [\"true\"], \"complexity\": -1}", "complexity must be simple, moderate, complex or a whole number >= 0, got '-1'"),
            ("{\"command\": [\"true\"], \"requirements\": {}}", "'requirements' must be a string or an array of strings"),
            ("{\"runtime\": \"r\", \"label\": {}, \"labels\": {}}", "give 'label' or 'labels', not both"),
            ("{\"runtime\": \"r\", \"requirement\": \"a\", \"requirements\": [\"b\"]}", "give 'requirement' or 'requirements', not both"),
            ("{\"runtime\": \"r\", \"constraint\": {}, \"constraints\": {}}", "give 'constraint' or 'constraints', not both"),
            ("{\"runtime\": \"r\", \"prompt\": \"a\", \"promptFile\": \"prompts/p1.md\"}", "prompt and promptFile are mutually exclusive"),
            ("{\"runtime\": \"r\", \"context\": 1, \"contextFile\": \"ctx.json\"}", "context and contextFile are mutually exclusive"),
            ("{\"runtime\": \"r\", \"promptFile\": \"missing.md\"}", "cannot read promptFile 'missing.md': no such file"),
            ("{\"runtime\": \"r\", \"contextFile\": \"bad.json\"}", "context file 'bad.json' is not JSON"),
            ("{\"runtime\": \"r\", \"command\": [\"ls\"]}", "a task names either a runtime or a command, not both"),
            ("{}", "a task needs a command, or a runtime with a prompt"),
            ("{\"id\": \"a b\", \"command\": [\"true\"]}", "may contain only"),
            ("{\"command\": [\"true\"], \"timeout\": 10, \"maxTimeout\": 5}", "is over maxTimeout"),
            ("{\"command\": [\"true\"], \"Command\": [\"x\"]}", "unknown field 'Command'"),
        ]
        for (line, reason) in cases {
            let error = Self.error(line)
            #expect(error?.hasPrefix("tasks.jsonl:1: ") == true, "\(line): \(error ?? "accepted")")
            #expect(error?.contains(reason) == true, "\(line): \(error ?? "accepted")")
        }
    }

    @Test func duplicateIdsAreRefusedWithBothLines() {
        let text = "{\"id\": \"a\", \"command\": [\"true\"]}\n{\"id\": \"b\", \"command\": [\"true\"]}\n{\"id\": \"a\", \"runtime\": \"r\", \"prompt\": \"p\"}"
        #expect(throws: TaskFileError(file: "tasks.jsonl", line: 3, reason: "duplicate id 'a' (first on line 1)")) {
            try Self.parse(text)
        }
    }

    @Test func theFirstProblemWinsAndNothingIsReturned() {
        let text = "{\"command\": [\"true\"]}\n{\"bogus\": 1}\n{\"command\": 5}"
        #expect(Self.error(text) == "tasks.jsonl:2: unknown field 'bogus'")
    }

    @Test func anEmptyFileIsAnError() {
        #expect(Self.error("") == "tasks.jsonl: no tasks in the file")
        #expect(Self.error("# nothing\n\n") == "tasks.jsonl: no tasks in the file")
    }

    @Test func nullFieldsCountAsAbsent() throws {
        let spec = try #require(try Self.parse("{\"command\": [\"true\"], \"id\": null, \"timeout\": null, \"labels\": null}").first)
        #expect(spec == TaskSpec(command: ["true"]))
    }

    @Test func loadReadsTheFileAndResolvesAgainstItsDirectory() throws {
        let dir = NSTemporaryDirectory() + "taskfile-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir + "/p", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "the prompt".write(toFile: dir + "/p/x.md", atomically: true, encoding: .utf8)
        try "{\"runtime\": \"r\", \"promptFile\": \"p/x.md\"}\n".write(toFile: dir + "/t.jsonl", atomically: true, encoding: .utf8)
        #expect(try TaskFile.load(path: dir + "/t.jsonl").first?.prompt == "the prompt")
        #expect(throws: TaskFileError(file: dir + "/none.jsonl", line: nil, reason: "cannot read it: no such file")) {
            try TaskFile.load(path: dir + "/none.jsonl")
        }
        #expect(throws: TaskFileError(file: dir, line: nil, reason: "cannot read it: it is a directory")) {
            try TaskFile.load(path: dir)
        }
    }

    @Test func everyDocumentedKeyIsAccepted() throws {
        // A line naming each key once (synonym pairs: one side each) parses.
        let line = """
            {"id": "k", "env": {}, "secretEnv": {}, "runtime": "r", "model": "m", "prompt": "p", "objective": "o", "context": null, \
            "requirement": "q", "complexity": "simple", "timeout": 1, "maxTimeout": 2, "extendBy": 1, "extendWithin": 1, \
            "activityWindow": 1, "minBursts": 1, "burstGap": 1, "silenceWarn": 1, "silenceKill": 1, "killGrace": 1, "label": {}, \
            "parent": "pp", "constraint": [], "priority": 0, "inputs": ["a", "b:c"], "artifacts": ["out/*"], \
            "repo": "/r.git", "ref": "main", "retries": 2, "retryOn": ["failed", "lost"], "retryBackoff": 1.5, \
            "after": "a, b", "afterAny": ["c,d", "e"]}
            """
        let spec = try #require(try Self.parse(line).first)
        #expect(spec.retries == 2 && spec.retryOn == ["failed", "lost"] && spec.retryBackoff == 1.5)
        #expect(spec.after == ["a", "b"] && spec.afterAny == ["c", "d", "e"])
        #expect(try Self.parse(#"{"command": ["true"], "retryOn": "timed_out, spawn_failed"}"#).first?.retryOn == ["timed_out", "spawn_failed"])
        #expect(try Self.parse(#"{"command": ["true"], "workdir": "/w"}"#).first?.workdir == "/w")
        #expect(TaskFile.keys.count == 40)
    }

    /// Issue 11: `workdir`, `inputs`, `artifacts`, `repo`, `ref`, with the flags' checks.
    @Test func workKeysMapToTheSpecAndAreChecked() throws {
        let spec = try #require(try Self.parse(#"{"command": ["make"], "inputs": ["src", "data:in/data"], "artifacts": ["build/*"], "repo": "/r.git", "ref": "v1"}"#).first)
        #expect(spec.inputs == ["src", "data:in/data"])
        #expect(spec.inputBlobs == nil)
        #expect(spec.artifacts == ["build/*"])
        #expect(spec.repo == "/r.git" && spec.ref == "v1")
        #expect(try Self.parse(#"{"command": ["true"], "inputs": [], "artifacts": []}"#).first?.inputs == nil)
        let cases: [(String, String)] = [
            (#"{"command": ["true"], "inputs": "src"}"#, "tasks.jsonl:1: 'inputs' must be an array of strings, got a string"),
            (#"{"command": ["true"], "artifacts": [1]}"#, "tasks.jsonl:1: 'artifacts' must be an array of strings, got a number"),
            (#"{"command": ["true"], "workdir": "rel"}"#, "tasks.jsonl:1: workdir must be an absolute path, got 'rel'"),
            (#"{"command": ["true"], "workdir": "/w", "inputs": ["a"]}"#, "tasks.jsonl:1: workdir and inputs do not go together"),
            (#"{"command": ["true"], "workdir": "/w", "repo": "/r"}"#, "tasks.jsonl:1: workdir and repo do not go together"),
            (#"{"command": ["true"], "ref": "main"}"#, "tasks.jsonl:1: ref goes with repo"),
            (#"{"command": ["true"], "artifacts": ["../x"]}"#, "tasks.jsonl:1: artifact pattern '../x' has a '..' component"),
            (#"{"command": ["true"], "repo": "/r", "ref": "a b"}"#, "tasks.jsonl:1: ref 'a b' contains whitespace"),
        ]
        for (line, expected) in cases {
            #expect(Self.error(line)?.hasPrefix(expected) == true, "\(line): \(Self.error(line) ?? "accepted")")
        }
    }
}
