import Testing
@testable import SwarmScheduler
import SwarmProtocol

/// A task credential's subtree checks cost each id once per request (`SubtreeMemo`): one frame
/// naming a deep task thousands of times (as parent or dependency) walked up to 1,000 parents
/// each time. 40 specs each `after` the 1,000 tasks of a chain took 22 s (debug). Pure.
@Suite struct ClientPolicyMemoTests {
    typealias C = ClientRequestsTests

    @Test func eachIdIsWalkedOncePerRequest() {
        var memo = SubtreeMemo()
        var walks: [String] = []
        for _ in 0..<1_000 {
            #expect(memo.contains("deep") { walks.append($0); return true })
            #expect(!memo.contains("out") { walks.append($0); return false })
        }
        #expect(walks == ["deep", "out"])
    }

    /// The answers stay the rules' own: parents through chains of the batch, dependencies
    /// named again and again, one outside the subtree refused wherever it comes.
    @Test func aBatchNamingTheSameTasksOverAndOverIsJudgedAsBefore() throws {
        var state = try C.state()  // r -> c; o outside r's subtree
        var specs: [TaskSpec] = []
        for i in 0..<2_000 {
            var spec = TaskSpec(id: "y\(i)", command: ["true"])
            spec.parent = i % 500 == 0 ? "c" : "y\(i - 1)"
            spec.after = ["c", "r"]
            specs.append(spec)
        }
        #expect(C.handle(.submitBatch(.init(requestId: 1, tasks: specs)), as: .task("r"), &state).refusal == nil)
        #expect(try state.task("y1999").parent == "y1998")
        var late = specs.map { spec in var s = spec; s.id = "z" + spec.id!.dropFirst(); s.parent = s.parent.map { $0 == "c" ? "c" : "z" + $0.dropFirst() }; return s }
        late[1_999].after = ["c", "o"]
        let refusal = try #require(try C.refusal(.submitBatch(.init(requestId: 2, tasks: late)), as: .task("r")))
        #expect(refusal.reason.contains("task 'o' is outside the subtree of task 'r'"))
        late[1_999].after = ["c"]
        late[1_500].parent = "o"
        let outside = try #require(try C.refusal(.submitBatch(.init(requestId: 3, tasks: late)), as: .task("r")))
        #expect(outside.reason.contains("parent 'o' is outside the subtree of task 'r'"))
    }
}
