/// How large a task may be so that every frame it causes fits the frame limit, checked when it
/// is submitted: a task that could never reach a worker, or whose status could never be read,
/// is refused then, not found out when it is placed (where it would cost other tasks).
///
/// The frames a task causes, and what each carries besides fixed fields:
/// - `assign` (scheduler to worker; the worker reads frames of at most `maxFrame`): the whole
///   spec, inside `{"type":"assign","task":{"id":..,"attempt":..,"spec":..,"submittedAt":..,
///   "placedAt":..,"taskToken":..}}`, which adds under 400 bytes (`assignEnvelopeBytes`); its
///   `secretEnv` values are opened, shorter than the sealed ones admission counted.
/// - `taskInfo` and a single-task `waitResult`: the spec's command, labels, parent (and, in a
///   wait reason, its constraints), each at most as large as in the spec; the output tail, 64
///   KiB of bytes of which each may grow to 6 when escaped (a control byte as `\u00XX`): 384
///   KiB; the reason and metrics (paths, numbers, messages): under 64 KiB.
/// `reservedBytes` (1 MiB) covers everything but the spec, so the spec may take 15 MiB.
/// Listings (many tasks) have their own bounds.
public enum FrameBudget {
    /// The largest frame payload any swarm peer reads from an authenticated peer (a worker's
    /// connection to its scheduler uses the default).
    public static let maxFrame = Frame.defaultMaxPayload
    /// Bytes every task-carrying frame keeps for what is not the spec (see above).
    public static let reservedBytes = 1024 * 1024
    /// The most a spec may take, encoded as JSON the way the scheduler sends it.
    public static let maxSpecBytes = maxFrame - reservedBytes
    /// Bound on what `assign` adds around the spec (type, task id, attempt, timestamps, the
    /// task's credential).
    public static let assignEnvelopeBytes = 400
    /// The deepest nesting of a task's `context`: every frame carrying it adds levels above it
    /// (an `assign` 4), and decoders refuse documents nested past 512.
    public static let maxContextDepth = 256

    /// The spec's size as JSON, as an `assign` carries it.
    public static func encodedSize(of spec: TaskSpec) -> Int {
        var bytes: [UInt8] = []
        // Plain data: encoding cannot fail but for non-finite numbers, which decoding refuses.
        do { try FastJSONEncoder().encode(spec, appendingTo: &bytes) } catch { return Int.max }
        return bytes.count
    }

    /// `encodedSize(of:)`, or an upper bound of it when that is under `maxSpecBytes` and quick
    /// to find (no `context`): what admission needs, without encoding every small task.
    public static func admissionSize(of spec: TaskSpec) -> Int {
        if spec.context == nil {
            var bytes = 0, strings = 0
            func add(_ s: String?) { if let s { bytes += s.utf8.count; strings += 1 } }
            func addMap(_ map: [String: String]?) { for (key, value) in map ?? [:] { add(key); add(value) } }
            // Field by field, not through array literals: no allocations per submitted task.
            add(spec.id); add(spec.runtime); add(spec.model); add(spec.prompt)
            add(spec.objective); add(spec.complexity); add(spec.parent)
            for s in spec.command { add(s) }
            for s in spec.requirements ?? [] { add(s) }
            addMap(spec.env); addMap(spec.secretEnv); addMap(spec.labels); addMap(spec.constraints)
            add(spec.workdir); add(spec.repo); add(spec.ref)
            for s in spec.inputs ?? [] { add(s) }
            for s in spec.artifacts ?? [] { add(s) }
            for s in spec.retryOn ?? [] { add(s) }
            // Each input blob: its dest and hash, plus its size and keys (under 64 bytes).
            for blob in spec.inputBlobs ?? [] { add(blob.dest); add(blob.sha256); bytes += 64 }
            // At most 6 bytes per byte once escaped; quotes, a key and separators under 32 per
            // string; the numbers with their keys and the containers' keys under 1 KiB.
            let bound = 6 * bytes + 32 * strings + 1024
            if bound <= maxSpecBytes { return bound }
        }
        return encodedSize(of: spec)
    }

    /// Why `spec` (its id set) cannot be accepted because of the frames it would cause, or nil.
    /// `encodedBytes` is `encodedSize(of: spec)` when already known.
    public static func problem(with spec: TaskSpec, encodedBytes: Int? = nil) -> String? {
        if let context = spec.context, context.depth > maxContextDepth {
            return "context is nested \(context.depth) levels deep; the limit is \(maxContextDepth)"
        }
        let size = encodedBytes ?? encodedSize(of: spec)
        if size > maxSpecBytes {
            return "the task is \(size) bytes as JSON; the limit is \(maxSpecBytes) (the \(maxFrame)-byte frame limit less \(reservedBytes) for what travels with it: its assignment, output tail and status)"
        }
        return nil
    }

    /// Why a `batchSubmitted` reply for these ids (in `ids`, and each possibly in `existing`)
    /// would not fit a frame, or nil. `generated` ids still to be made count at their longest.
    public static func batchReplyProblem(givenIds: [String], generated: Int) -> String? {
        // `"id",` in `ids` and again, at worst, in `existing`; generated ids are never existing.
        var size = 128
        for id in givenIds { size += 2 * (id.utf8.count + 3) }
        size += generated * (TaskID.maxGeneratedLength + 3)
        guard size > maxFrame else { return nil }
        return "the batch's reply would be \(size) bytes; the frame limit is \(maxFrame): submit it in smaller batches"
    }
}

extension TaskID {
    /// The longest id `generate` makes: `task-` + a 20-character number + `-` + 6.
    public static let maxGeneratedLength = 32
}

extension JSONValue {
    /// Levels of arrays and objects: 0 for a scalar, 1 for `[]` or `{}`, and so on.
    public var depth: Int {
        // Iterative: a hostile document must not exhaust the stack here.
        var deepest = 0
        var stack: [(JSONValue, Int)] = [(self, 0)]
        while let (value, level) = stack.popLast() {
            switch value {
            case .array(let items):
                deepest = max(deepest, level + 1)
                for item in items { stack.append((item, level + 1)) }
            case .object(let fields):
                deepest = max(deepest, level + 1)
                for item in fields.values { stack.append((item, level + 1)) }
            default:
                break
            }
        }
        return deepest
    }
}

/// The run an `assign` payload is for, read from its first bytes without decoding the whole
/// document, so a worker can refuse an assignment it cannot decode (and keep its connection):
/// the scheduler writes `{"type":"assign","task":{"id":"<id>","attempt":<n>,` first.
public enum AssignPeek {
    public static func run(in payload: [UInt8]) -> RunRef? {
        let head = Array(#"{"type":"assign","task":{"id":""#.utf8)
        guard payload.count > head.count, payload.starts(with: head) else { return nil }
        var i = head.count
        var idBytes: [UInt8] = []
        while i < payload.count, payload[i] != UInt8(ascii: "\""), idBytes.count <= TaskID.maxLength {
            idBytes.append(payload[i])
            i += 1
        }
        let attemptKey = Array(#"","attempt":"#.utf8)
        guard payload[i...].starts(with: attemptKey) else { return nil }
        i += attemptKey.count
        var attempt = 0
        var digits = 0
        while i < payload.count, payload[i] >= 0x30, payload[i] <= 0x39, digits < 9 {
            attempt = attempt * 10 + Int(payload[i] - 0x30)
            digits += 1
            i += 1
        }
        let id = String(decoding: idBytes, as: UTF8.self)
        guard digits > 0, TaskID.problem(with: id) == nil else { return nil }
        return RunRef(id: id, attempt: attempt)
    }
}
