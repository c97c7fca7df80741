import Testing
@testable import SwarmProtocol

/// Issue 11, client item 2: `TaskSpec.problem()` on workdir, inputs, artifacts, repo and ref,
/// the same check the scheduler makes at submit. Each limit at its edge.
@Suite struct WorkSpecTests {
    static let hash = String(repeating: "ab", count: 32)

    static func spec(_ change: (inout TaskSpec) -> Void) -> TaskSpec {
        var spec = TaskSpec(command: ["true"])
        change(&spec)
        return spec
    }

    static func problem(_ change: (inout TaskSpec) -> Void) -> String? { spec(change).problem() }

    static func expectRefused(_ change: (inout TaskSpec) -> Void, _ text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let problem = Self.problem(change)
        #expect(problem?.contains(text) == true, "\(problem ?? "accepted")", sourceLocation: sourceLocation)
        #expect(problem?.contains("\n") != true, sourceLocation: sourceLocation)
    }

    static func blob(_ dest: String, _ hash: String = WorkSpecTests.hash, size: Int64 = 10) -> InputRef {
        InputRef(dest: dest, sha256: hash, size: size)
    }

    @Test func workdirIsAnAbsolutePathWithinPathMax() {
        #expect(Self.problem { $0.workdir = "/shared/x" } == nil)
        #expect(Self.problem { $0.workdir = "/" + String(repeating: "a", count: 4095) } == nil)
        Self.expectRefused({ $0.workdir = "/" + String(repeating: "a", count: 4096) }, "workdir is 4097 bytes; the limit is 4096")
        Self.expectRefused({ $0.workdir = "relative/x" }, "workdir must be an absolute path")
        Self.expectRefused({ $0.workdir = "" }, "workdir must be an absolute path")
        Self.expectRefused({ $0.workdir = "/a\0b" }, "workdir contains a NUL byte")
    }

    @Test func workdirGoesWithNeitherInputsNorRepoButWithArtifacts() {
        Self.expectRefused({ $0.workdir = "/w"; $0.inputs = ["src"]; $0.inputBlobs = [Self.blob("src")] },
                           "workdir and inputs do not go together: inputs are unpacked into the task's own directory")
        Self.expectRefused({ $0.workdir = "/w"; $0.inputBlobs = [Self.blob("src")] }, "workdir and inputs do not go together")
        #expect(Self.spec { $0.workdir = "/w"; $0.inputs = ["src"] }.problem(inputsUploaded: false)?.contains("workdir and inputs") == true)
        Self.expectRefused({ $0.workdir = "/w"; $0.repo = "/r.git" }, "workdir and repo do not go together")
        #expect(Self.problem { $0.workdir = "/w"; $0.artifacts = ["out/*"] } == nil)
        #expect(Self.problem { $0.repo = "/r.git"; $0.inputs = ["a"]; $0.inputBlobs = [Self.blob("a")] } == nil)
    }

    @Test func refNeedsRepoAndIsASaneRef() {
        Self.expectRefused({ $0.ref = "main" }, "ref goes with repo")
        for good in ["main", "v1.2.3", "feature/x-y", "HEAD", "main~2", "HEAD^", String(repeating: "0a", count: 20),
                     String(repeating: "r", count: 1024)] {
            #expect(Self.problem { $0.repo = "/r.git"; $0.ref = good } == nil, "\(good)")
        }
        let bad: [(String, String)] = [
            ("", "ref is empty"), ("a b", "whitespace"), ("a\tb", "whitespace"), ("a\nb", "whitespace"), ("a\0b", "whitespace"),
            ("a..b", "contains '..'"), ("..", "contains '..'"), ("-x", "starts with '-'"), ("--upload-pack=x", "starts with '-'"),
            ("a:b", "git refuses"), ("a*", "git refuses"), ("a?", "git refuses"), ("a[", "git refuses"), ("a\\b", "git refuses"),
            ("a@{1}", "git refuses"), (String(repeating: "r", count: 1025), "ref is 1025 bytes; the limit is 1024"),
        ]
        for (ref, text) in bad { Self.expectRefused({ $0.repo = "/r.git"; $0.ref = ref }, text) }
    }

    @Test func repoIsNonEmptyBoundedAndNoOption() {
        #expect(Self.problem { $0.repo = "https://example.com/x.git" } == nil)
        #expect(Self.problem { $0.repo = "/" + String(repeating: "a", count: 4095) } == nil)
        Self.expectRefused({ $0.repo = "/" + String(repeating: "a", count: 4096) }, "repo is 4097 bytes; the limit is 4096")
        Self.expectRefused({ $0.repo = "" }, "repo is empty")
        Self.expectRefused({ $0.repo = "/r\0" }, "repo contains a NUL byte")
        Self.expectRefused({ $0.repo = "-uevil" }, "starts with '-'")
        Self.expectRefused({ $0.repo = "/r\n" }, "control character")
    }

    @Test func artifactPatternsAreRelativeInsideAndCounted() {
        #expect(Self.problem { $0.artifacts = ["out/*.o", "build/app", "..hidden", "a/..b", "**/*.log"] } == nil)
        Self.expectRefused({ $0.artifacts = ["/etc/passwd"] }, "is absolute")
        Self.expectRefused({ $0.artifacts = [".."] }, "has a '..' component")
        Self.expectRefused({ $0.artifacts = ["a/../../b"] }, "has a '..' component")
        Self.expectRefused({ $0.artifacts = ["../x"] }, "has a '..' component")
        Self.expectRefused({ $0.artifacts = [""] }, "an artifact pattern is empty")
        Self.expectRefused({ $0.artifacts = ["a\0"] }, "NUL")
        #expect(Self.problem { $0.artifacts = [String(repeating: "a", count: 4096)] } == nil)
        Self.expectRefused({ $0.artifacts = [String(repeating: "a", count: 4097)] }, "4097 bytes; the limit is 4096")
        #expect(Self.problem { $0.artifacts = (0..<256).map { "f\($0)" } } == nil)
        Self.expectRefused({ $0.artifacts = (0..<257).map { "f\($0)" } }, "257 artifact patterns; a task may have at most 256")
    }

    @Test func inputBlobsAreCountedHashedAndPlacedInside() {
        #expect(Self.problem { $0.inputBlobs = (0..<256).map { Self.blob("d\($0)") } } == nil)
        Self.expectRefused({ $0.inputBlobs = (0..<257).map { Self.blob("d\($0)") } }, "257 inputBlobs; a task may have at most 256")
        Self.expectRefused({ $0.inputs = (0..<257).map { "d\($0)" } }, "257 inputs; a task may have at most 256")
        Self.expectRefused({ $0.inputBlobs = [Self.blob("a", "AB" + String(repeating: "0", count: 62))] }, "invalid blob hash")
        Self.expectRefused({ $0.inputBlobs = [Self.blob("a", "abc")] }, "invalid blob hash")
        Self.expectRefused({ $0.inputBlobs = [Self.blob("a", size: -1)] }, "negative size")
        for (dest, text) in [("", "empty path"), ("/abs", "absolute path"), ("../x", "'..' component"), ("a/./b", "'.' component"),
                             ("a//b", "empty component"), ("a/", "empty component"), (".", "'.' component"),
                             (String(repeating: "a", count: 4097), "over 4096 bytes"), ("a\0", "NUL")] {
            Self.expectRefused({ $0.inputBlobs = [Self.blob(dest)] }, text)
        }
        // 4096 bytes in components of at most 255: accepted; one component of 256: refused.
        let longest = ((0..<15).map { _ in String(repeating: "a", count: 255) } + [String(repeating: "b", count: 254), "c"]).joined(separator: "/")
        #expect(longest.utf8.count == 4096)
        #expect(Self.problem { $0.inputBlobs = [Self.blob(longest)] } == nil)
        #expect(Self.problem { $0.inputBlobs = [Self.blob(String(repeating: "a", count: 255))] } == nil)
        Self.expectRefused({ $0.inputBlobs = [Self.blob("x/" + String(repeating: "a", count: 256))] }, "is over 255 bytes")
    }

    @Test func inputDestinationsMayNotMeetOrNest() {
        #expect(Self.problem { $0.inputBlobs = [Self.blob("a"), Self.blob("a-x"), Self.blob("a.b/c"), Self.blob("b/a")] } == nil)
        Self.expectRefused({ $0.inputBlobs = [Self.blob("src"), Self.blob("src")] }, "two inputs have the destination 'src'")
        Self.expectRefused({ $0.inputBlobs = [Self.blob("a/b/c"), Self.blob("a-x"), Self.blob("a")] },
                           "input destinations 'a' and 'a/b/c' overlap")
        Self.expectRefused({ $0.inputBlobs = [Self.blob("a"), Self.blob("a-x"), Self.blob("a/b")] }, "'a' and 'a/b' overlap")
    }

    @Test func inputsWithoutTheirUploadsAreRefusedByTheScheduler() {
        Self.expectRefused({ $0.inputs = ["src"] }, "1 inputs but 0 uploaded (inputBlobs)")
        Self.expectRefused({ $0.inputs = ["a", "b"]; $0.inputBlobs = [Self.blob("a")] }, "2 inputs but 1 uploaded")
        // Before the upload, the client checks the rest of the spec.
        #expect(Self.spec { $0.inputs = ["src"] }.problem(inputsUploaded: false) == nil)
        #expect(Self.spec { $0.inputs = [""] }.problem(inputsUploaded: false)?.contains("input 1 is empty") == true)
        // Blobs without `inputs` (a program's own client) are fine.
        #expect(Self.problem { $0.inputBlobs = [Self.blob("a")] } == nil)
        #expect(Self.problem { $0.inputs = ["x:a"]; $0.inputBlobs = [Self.blob("a")] } == nil)
    }

    @Test func admissionBoundCoversTheNewFields() {
        let spec = Self.spec {
            $0.workdir = "/\u{1}" + String(repeating: "w", count: 4000)
            $0.artifacts = (0..<256).map { "\u{1}\($0)" + String(repeating: "p", count: 100) }
            $0.inputs = (0..<256).map { "\u{1}\($0)" + String(repeating: "i", count: 100) }
            $0.inputBlobs = (0..<256).map { Self.blob("d\($0)", size: Int64.max) }
            $0.repo = "\u{1}r"; $0.ref = "main"
        }
        #expect(FrameBudget.admissionSize(of: spec) >= FrameBudget.encodedSize(of: spec))
    }
}
