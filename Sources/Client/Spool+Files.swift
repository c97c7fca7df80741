import SwarmProtocol
#if canImport(Glibc)
import Glibc
#endif

/// The file work of `Spool`'s directives, and the scheduler's replies turned into events.
extension Spool {
    func claim(_ name: String, _ stamp: FileStamp) {
        let path = files.requests + "/" + name
        let now = SpoolFiles.stamp(path)
        guard now == stamp else { queue.append(.claimAbandoned(name, now)); return }
        let claimed: String
        do {
            claimed = try SpoolFiles.move(path, into: files.processing, as: name)
        } catch {
            log("cannot claim \(name): \(error)")
            queue.append(.claimAbandoned(name, SpoolFiles.stamp(path)))
            return
        }
        SpoolFiles.syncDirectory(files.processing)
        let outcome = readOutcome(claimed)
        if case .request(let request, _) = outcome { log("claimed \(name) as task \(request.id)") }
        queue.append(.read(claimed, outcome, recovered: false))
    }

    /// `processing/NAME` read and parsed (never more than `SpoolRequest.maxBytes`).
    func readOutcome(_ name: String) -> SpoolReadOutcome {
        let path = files.processing + "/" + name
        guard let stamp = SpoolFiles.stamp(path) else {
            return .rejected(.init("not a regular file"))
        }
        if stamp.size > Int64(SpoolRequest.maxBytes) {
            return .rejected(.init("the request is \(stamp.size) bytes; the most a request may have is \(SpoolRequest.maxBytes)"))
        }
        do {
            guard let bytes = try SpoolFiles.read(path, max: SpoolRequest.maxBytes) else {
                return .rejected(.init("the request grew past \(SpoolRequest.maxBytes) bytes while it was read"))
            }
            let request = try SpoolRequest.parse(bytes, fileName: name, mtimeMs: stamp.mtimeNs / 1_000_000,
                                                 defaults: options.defaults)
            let exists = SpoolFiles.exists(files.results + "/" + request.id + ".json")
            return .request(request, resultExists: exists)
        } catch let error as SpoolRejection {
            return .rejected(error)
        } catch {
            return .rejected(.init("\(error)"))
        }
    }

    /// Moves `processing/NAME` to `rejected/` with `NAME.error` beside it (written first, so a
    /// rejected file always has its reason).
    func reject(_ name: String, _ reason: String) {
        var chosen = name
        var n = 1
        while SpoolFiles.exists(files.rejected + "/" + chosen) || SpoolFiles.exists(files.rejected + "/" + chosen + ".error") {
            n += 1
            chosen = "\(name)~\(n)"
        }
        do {
            _ = try SpoolFiles.writeAtomically(Array((reason + "\n").utf8), dir: files.rejected, name: chosen + ".error", replace: true)
            if rename(files.processing + "/" + name, files.rejected + "/" + chosen) != 0 {
                throw SpoolFiles.Failure("cannot move \(name) to rejected/")
            }
            SpoolFiles.syncDirectory(files.rejected)
            log("rejected \(name): \(reason)")
        } catch {
            log("cannot reject \(name) (\(reason)): \(error)")
        }
    }

    func complete(_ name: String, _ id: String, _ result: [UInt8]) {
        do {
            if try SpoolFiles.writeAtomically(result, dir: files.results, name: id + ".json") {
                log("result \(id).json written for \(name)")
                moveToDone(name)
            } else {
                reject(name, "results/\(id).json appeared while the request ran; it was not overwritten")
            }
            queue.append(.completed(name))
        } catch {
            log("cannot write results/\(id).json: \(error); retrying")
            queue.append(.completeFailed(name))
        }
    }

    func moveToDone(_ name: String) {
        do {
            _ = try SpoolFiles.move(files.processing + "/" + name, into: files.done, as: name)
            SpoolFiles.syncDirectory(files.done)
        } catch {
            log("cannot move \(name) to done/: \(error)")
        }
    }

    // MARK: Replies

    func collectReplies() {
        guard client.hasReplies else { return }
        for (rid, what) in pending {
            guard let reply = client.takeReply(rid) else { continue }
            pending[rid] = nil
            switch (what, reply) {
            case (.submit(let name), .batchSubmitted):
                feed(.submitted(name))
            case (_, .error(let e)) where e.code == .forbidden:
                // The spool's token may not submit or wait (a read-only scoped token): no
                // request can fix that, so the spool stops rather than reject them all.
                fatal = .server(e.code, e.reason)
            case (.submit(let name), .error(let e)):
                feed(.submitFailed(name, e.code, e.reason))
            case (.wait(let name), .waitResult(let result)):
                if let info = result.tasks.first, info.state.isTerminal {
                    feed(.ended(name, info))
                } else {
                    feed(.waitFailed(name, nil, "the wait ended before the task"))
                }
            case (.wait(let name), .error(let e)):
                feed(.waitFailed(name, e.code, e.reason))
            case (.submit(let name), _):
                feed(.submitFailed(name, .unexpected, "unexpected reply to submitBatch"))
            case (.wait(let name), _):
                feed(.waitFailed(name, .unexpected, "unexpected reply to wait"))
            }
        }
    }

    func connectionLost() {
        log("connection to the scheduler lost (\(client.connectionFailure.map { "\($0)" } ?? "?")); reconnecting")
        pending = [:]
        client.resetConnection()
        feed(.disconnected)
    }
}
