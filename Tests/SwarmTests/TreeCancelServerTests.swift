import Foundation
import Testing
import SwarmClient
@testable import SwarmScheduler
import SwarmProtocol

/// The scheduler's side of a sliced `cancel --recursive`: a request sent after it on the same
/// connection is answered before it (the slices leave the loop between them, where one turn
/// for the whole tree answered nothing else), the answer counts the whole tree, and every
/// task of it ends.
@Suite struct TreeCancelServerTests {
    @Test func requestsAreAnsweredBetweenTheSlicesOfATreeCancel() throws {
        let scheduler = InProcessScheduler(SchedulerConfig())
        defer { #expect(scheduler.stop() == nil) }
        let admin = try SwarmClient(address: scheduler.address, token: nil)
        let size = 2 * ClusterState.treeCancelSlice + 500  // three slices; no worker: all queued
        var specs = [TaskSpec(id: "root", command: ["true"])]
        for i in 1..<size {
            var spec = TaskSpec(id: "k\(i)", command: ["true"])
            spec.parent = "root"
            specs.append(spec)
        }
        for start in stride(from: 0, to: specs.count, by: 500) {
            _ = try admin.submitBatch(Array(specs[start..<min(start + 500, specs.count)]))
        }
        let socket = try handshakenSocket(port: scheduler.port, name: "canceller")
        socket.send(MessageCodec.frame(.cancelTree(.init(requestId: 1, id: "root")))
                    + MessageCodec.frame(.listNodes(.init(requestId: 2))))
        var order: [Int] = []
        var answer: Message.TreeCancelled?
        for _ in 0..<2 {
            switch socket.readMessage() {
            case .nodeList(let reply)?: order.append(reply.requestId)
            case .treeCancelled(let reply)?: order.append(reply.requestId); answer = reply
            case let other: Issue.record("unexpected \(String(describing: other))")
            }
        }
        #expect(order == [2, 1])
        #expect(answer == .init(requestId: 1, id: "root", total: size, cancelled: size, killing: 0, alreadyEnded: 0))
        let left = scheduler.onLoop { server in
            server.state.listTasks().filter { $0.state != .cancelled }.count + server.state.treeCancelPending.count
        }
        #expect(left == 0)
    }
}
