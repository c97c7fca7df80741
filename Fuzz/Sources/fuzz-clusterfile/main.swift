import Foundation
import FuzzSupport
import SwarmCluster
import SwarmNode
import SwarmProtocol

// `cluster.json` (`swarm scheduler --config`, `swarm worker --config --name N`) on arbitrary
// bytes. Properties: never a crash; a refusal is one `ConfigError` that names the file; an
// accepted file has the bounds its parser promises, and applying it to a worker's settings (for
// each worker it names, and for none) does not crash either.

Fuzz.run { data in
    let file: ClusterFile
    do {
        file = try ClusterFile.parse(Data(data), name: "cluster.json")
    } catch let error as ConfigError {
        Fuzz.check(error.description.hasPrefix("cluster.json"), "error text \(error.description)")
        return
    } catch {
        Fuzz.fail("not a ConfigError: \(error)")
    }
    if let problem = ClusterFile.SchedulerSection.timingProblem(heartbeat: file.scheduler.heartbeatSeconds,
                                                                lostAfter: file.scheduler.lostAfterSeconds) {
        Fuzz.fail("accepted timings with a problem: \(problem)")
    }
    for (name, worker) in file.workers {
        Fuzz.check(WorkerName.problem(with: name) == nil, "accepted worker name \(name)")
        if let slots = worker.slots { Fuzz.check((1...100_000).contains(slots), "slots \(slots)") }
        for runtime in worker.runtimes ?? [] { Fuzz.check(file.runtimes[runtime] != nil, "undefined runtime \(runtime)") }
    }
    for name in Array(file.workers.keys) + ["not-in-the-file"] {
        var config = WorkerConfig(name: name, slots: 1, dataDir: "/fuzz")
        config.apply(file, worker: name)
        _ = file.runtimes(forWorker: name)
    }
    var config = WorkerConfig(name: "w", slots: 1, dataDir: "/fuzz")
    config.apply(file, worker: nil)
}
