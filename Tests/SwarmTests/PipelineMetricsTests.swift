import Testing
@testable import SwarmProtocol
@testable import SwarmNode

/// The pipeline's own figures in results (issue 11, for `swarm bench workspace`):
/// `prepareMs`, `inputBytesFetched`, `collectMs`.
@Suite struct PipelineMetricsTests {
    typealias T = TaskPipelineTests

    @Test func preparingAndCollectingAreTimedAndFetchedBytesCounted() throws {
        var p = T.pipeline(inputs: true, artifacts: true)
        _ = p.start(nowMs: 1_000)
        _ = p.handle(.prepared(.directory, problem: nil, nowMs: 1_002))
        p.inputBytesFetched += 100
        #expect(p.handle(.prepared(.inputs, problem: nil, nowMs: 1_040)) == [.spawn])
        _ = p.handle(.runEnded(T.runResult(), nowMs: 5_000))
        _ = p.handle(.artifactsFound([T.upload("out/a")], skipped: [], nowMs: 5_010))
        let result = try #require(T.finished(p.handle(.uploaded(index: 0, problem: nil, nowMs: 5_075))))
        #expect(result.metrics.prepareMs == 40)
        #expect(result.metrics.inputBytesFetched == 100)
        #expect(result.metrics.collectMs == 75)
        #expect(result.metrics.node == nil, "the run's own metrics are kept as the runner gave them")
    }

    @Test func servedFromTheCacheIsZeroAndNothingToCollectIsNull() throws {
        var p = T.pipeline(inputs: true, artifacts: false)
        _ = p.start(nowMs: 10)
        _ = p.handle(.prepared(.directory, problem: nil, nowMs: 11))
        _ = p.handle(.prepared(.inputs, problem: nil, nowMs: 12))
        let result = try #require(T.finished(p.handle(.runEnded(T.runResult(), nowMs: 99))))
        #expect(result.metrics.prepareMs == 2 && result.metrics.inputBytesFetched == 0 && result.metrics.collectMs == nil)
    }

    @Test func noInputsNoFetchFigureAndAFailedPreparationIsTimedToItsEnd() throws {
        var p = T.pipeline(inputs: false, artifacts: true)
        _ = p.start(nowMs: 100)
        let result = try #require(T.finished(p.handle(.prepared(.directory, problem: "workdir /x does not exist on worker w1", nowMs: 130))))
        #expect(result.state == .spawnFailed)
        #expect(result.metrics.prepareMs == 30 && result.metrics.inputBytesFetched == nil && result.metrics.collectMs == nil)
        #expect(result.metrics.node == "w1")
    }

    @Test func aHurriedStopsEndOfTimeIsNoTimeAndAnUntimedStartMeasuresNothing() throws {
        var p = T.pipeline(inputs: false, artifacts: true)
        _ = p.start(nowMs: 0)
        _ = p.handle(.prepared(.directory, problem: nil, nowMs: 5))
        _ = p.handle(.runEnded(T.runResult(), nowMs: 1_000))
        _ = p.handle(.artifactsFound([T.upload("out/a")], skipped: [], nowMs: 1_020))
        let cut = try #require(T.finished(p.handle(.deadline(nowMs: .max))))
        #expect(cut.metrics.collectMs == 20 && cut.skippedArtifacts?.count == 1)

        var untimed = T.pipeline(inputs: true, artifacts: false)
        _ = untimed.start()
        _ = untimed.handle(.prepared(.directory, problem: nil, nowMs: 1))
        _ = untimed.handle(.prepared(.inputs, problem: nil, nowMs: 2))
        let plain = try #require(T.finished(untimed.handle(.runEnded(T.runResult(), nowMs: 3))))
        #expect(plain.metrics == RunMetrics())
    }
}
