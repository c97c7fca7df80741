import SwarmProtocol

/// Where a task's `secretEnv` changes form (issue 16 item 3): sealed as it arrives in a
/// `submit` (before the state, the store or any log line sees it) and opened only into the
/// `assign` that carries it to its worker. Pure: the shell gives the sealer.
enum SecretSealing {
    /// `message` with the values of every `secretEnv` it carries sealed; the secrets are
    /// checked as plain values first (sealing hides their size and bytes). Without a sealer
    /// (no cluster token) a task with secrets is refused: there is no key to keep them under.
    static func sealed(_ message: Message, sealer: () -> SecretSealer?) throws(ClientRefusal) -> Message {
        switch message {
        case .submit(var submit):
            try seal(&submit.task, index: nil, sealer: sealer)
            return .submit(submit)
        case .submitBatch(var batch):
            guard batch.tasks.contains(where: { $0.secretEnv != nil }) else { return message }
            for i in batch.tasks.indices { try seal(&batch.tasks[i], index: i, sealer: sealer) }
            return .submitBatch(batch)
        default:
            return message
        }
    }

    private static func seal(_ spec: inout TaskSpec, index: Int?, sealer: () -> SecretSealer?) throws(ClientRefusal) {
        guard let secrets = spec.secretEnv else { return }
        guard !secrets.isEmpty else { spec.secretEnv = nil; return }
        let which = index.map { "task \($0 + 1) of the batch: " } ?? ""
        if let problem = spec.secretProblem(plain: true) {
            throw ClientRefusal(code: .invalidTask, reason: which + problem)
        }
        guard let sealer = sealer() else {
            throw ClientRefusal(code: .invalidTask, reason: "\(which)secretEnv needs a cluster token on the scheduler: secret values are kept encrypted under a key derived from it (start it with --token-file or SWARM_TOKEN)")
        }
        spec.secretEnv = sealer.seal(secrets)
    }

    /// What the worker is sent for `task`: its secrets opened and its credential added
    /// (`token`: the cluster token). A secret this key cannot open fails the assignment.
    static func outfitted(_ task: TaskAssignment, sealer: () -> SecretSealer?, token: ClusterToken?) -> Result<TaskAssignment, SecretOpenFailure> {
        var task = task
        task.taskToken = token?.taskCredential(for: task.id)
        guard let secrets = task.spec.secretEnv else { return .success(task) }
        guard let sealer = sealer() else { return .failure(SecretOpenFailure(name: secrets.keys.sorted().first ?? "")) }
        switch sealer.open(secrets) {
        case .success(let opened): task.spec.secretEnv = opened
        case .failure(let failure): return .failure(failure)
        }
        return .success(task)
    }

    /// The reason a task whose secret could not be opened fails with.
    static func openFailure(_ failure: SecretOpenFailure) -> String {
        "the scheduler cannot decrypt its secret \(PeerText.safe(failure.name)): it was sealed under another cluster token (was the token changed since it was submitted?)"
    }
}
