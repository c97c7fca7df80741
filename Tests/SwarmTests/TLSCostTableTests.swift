import Testing
@testable import SwarmBench

/// `swarm bench tls`'s table: medians with their min-max, TLS's cost from the medians and pair
/// by pair, CPU per task per side.
@Suite struct TLSCostTableTests {
    static func run(_ throughput: Double, schedulerMs: Double, workersMs: Double, tasks: Int = 1_000) -> RunFigures {
        var run = RunFigures(label: "spawn", tasks: tasks, concurrency: 64)
        run.throughput = throughput
        run.wallSeconds = Double(tasks) / throughput
        run.schedulerCpuMs = schedulerMs
        run.workersCpuMs = workersMs
        run.overheadCpuUsPerTask = (schedulerMs + workersMs) * 1000 / Double(tasks)
        return run
    }

    static let figures = TLSCostTable(
        spawn: ["plaintext": [run(500, schedulerMs: 400, workersMs: 400), run(600, schedulerMs: 380, workersMs: 390),
                              run(400, schedulerMs: 420, workersMs: 410)],
                "TLS": [run(480, schedulerMs: 420, workersMs: 410), run(540, schedulerMs: 400, workersMs: 400),
                        run(392, schedulerMs: 440, workersMs: 420)]],
        wide: [:], plainConnect: [0.4, 0.5, 0.45], tlsConnect: [1.8, 1.9, 1.7], tlsHandshake: [0.7, 0.8, 0.75],
        connections: 3)

    @Test func throughputCostComesFromTheMediansAndPairByPair() throws {
        let cost = Self.figures.throughputCost
        // Medians 500 and 480: 4%. Pairs: 500/480 4%, 600/540 10%, 400/392 2%.
        #expect(abs(try #require(cost.ofMedians) - 4) < 1e-9)
        let pairs = try #require(cost.pairs)
        #expect(abs(pairs.min - 2) < 1e-9 && abs(pairs.max - 10) < 1e-9 && pairs.runs == 3)
    }

    @Test func rowsShowMedianAndRangeAndCPUPerSide() throws {
        let rows = Self.figures.table.rows
        let spawn = try #require(rows.first { $0[0].hasPrefix("spawn throughput") })
        #expect(spawn[1] == "500 [400–600]")
        #expect(spawn[2] == "480 [392–540]")
        #expect(spawn[3] == "+4.0% (pairs +2.0 to +10.0%)")
        let scheduler = try #require(rows.first { $0[0].hasPrefix("spawn: scheduler CPU") })
        #expect(scheduler[1] == "400 [380–420]")
        #expect(scheduler[2] == "420 [400–440]")
        #expect(scheduler[3].hasPrefix("+5.0%"))
        let workers = try #require(rows.first { $0[0].hasPrefix("spawn: workers") })
        #expect(workers[1] == "400 [390–410]")
        let both = try #require(rows.first { $0[0].hasPrefix("spawn: scheduler + worker") })
        #expect(both[1] == "800 [770–830]")
        // No parallel-wide runs: dashes, never a crash.
        let wide = try #require(rows.first { $0[0].hasPrefix("parallel-wide") })
        #expect(wide[1] == "-" && wide[3] == "-")
    }

    @Test func oneRunHasNoRangeAndNoPairs() throws {
        let one = TLSCostTable(spawn: ["plaintext": [Self.run(500, schedulerMs: 1, workersMs: 1)],
                                       "TLS": [Self.run(450, schedulerMs: 1, workersMs: 1)]],
                               wide: [:], plainConnect: [], tlsConnect: [], tlsHandshake: [], connections: 0)
        let spawn = try #require(one.table.rows.first { $0[0].hasPrefix("spawn throughput") })
        #expect(spawn[1] == "500" && spawn[2] == "450" && spawn[3] == "+10.0%")
    }
}
