import FuzzSupport
import SwarmClient
import SwarmProtocol

// `swarm submit --file` on arbitrary text. `promptFile`/`contextFile` are read through a fake
// file system: a name ending in `.json` holds `{"k":[1,2.5,"x"]}`, one containing `missing` cannot
// be read, any other holds a short prompt. Properties: never a crash; the whole file is
// accepted or refused with one error that names the file (and a line, when one is at fault);
// every accepted spec passes the spec's own check, has an id only once, and travels the wire
// unchanged (fast encoder, then fast decoder, as the scheduler and workers read it).

struct Unreadable: Error {}

func readFile(_ path: String, limit: Int) throws -> String {
    if path.contains("missing") { throw Unreadable() }
    return path.hasSuffix(".json") ? #"{"k":[1,2.5,"x"]}"# : "a prompt read from \(path)"
}

Fuzz.run { data in
    let text = String(decoding: UnsafeRawBufferPointer(rebasing: data[...]), as: UTF8.self)
    let specs: [(line: Int, spec: TaskSpec)]
    do throws(TaskFileError) {
        specs = try TaskFile.parseNumbered(text, fileName: "tasks.jsonl", baseDirectory: "/fuzz", readFile: readFile)
    } catch {
        Fuzz.check(error.file == "tasks.jsonl" && !error.reason.isEmpty, "error \(error)")
        Fuzz.check(error.description.hasPrefix("tasks.jsonl"), "error text \(error.description)")
        return
    }
    Fuzz.check(!specs.isEmpty, "accepted a file with no task")
    var ids = Set<String>()
    for (line, spec) in specs {
        Fuzz.check(line >= 1, "line \(line)")
        Fuzz.check(spec.problem(inputsUploaded: false) == nil, "line \(line): accepted \(spec) with \(spec.problem(inputsUploaded: false)!)")
        if let id = spec.id { Fuzz.check(ids.insert(id).inserted, "id \(id) twice") }
        _ = FrameBudget.problem(with: spec)
        do {
            let bytes = try FastJSONEncoder().encode(spec)
            let back = try FastJSONDecoder().decode(TaskSpec.self, from: bytes)
            Fuzz.check(back == spec, "line \(line): \(spec) came back as \(back)")
        } catch {
            Fuzz.fail("line \(line): \(spec) does not travel: \(error)")
        }
    }
}
