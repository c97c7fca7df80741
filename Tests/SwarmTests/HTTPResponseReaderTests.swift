import Testing
@testable import SwarmHTTP

/// The client's response reader (the bench's dashboard readers use it to keep connections
/// alive): whole answers, chunked streams, their ends, and what is no answer.
struct HTTPResponseReaderTests {
    /// Reads `wire` in pieces of `step` bytes: each complete response's status, whether it was
    /// chunked, its body and whether the connection stays; `failure` if the bytes failed.
    static func responses(_ wire: String, step: Int, closeAtEnd: Bool = false)
        -> (answers: [(status: Int, chunked: Bool, body: String, keepAlive: Bool)], failure: String?) {
        var body: [UInt8] = []
        let reader = HTTPResponseReader { body += $0 }
        var answers: [(Int, Bool, String, Bool)] = []
        var rest = Array(wire.utf8)[...]
        while !rest.isEmpty {
            let piece = Array(rest.prefix(step))
            var offset = 0
            while offset < piece.count {
                let outcome = piece[offset...].withUnsafeBytes { reader.read($0) }
                switch outcome {
                case .needMore: offset = piece.count
                case .failed(let why): return (answers, why)
                case let .complete(consumed, keepAlive):
                    answers.append((reader.status, reader.chunked, String(decoding: body, as: UTF8.self), keepAlive))
                    body = []
                    offset += consumed
                }
            }
            rest = rest.dropFirst(piece.count)
        }
        if closeAtEnd {
            switch reader.peerClosed() {
            case .complete(_, let keepAlive): answers.append((reader.status, reader.chunked, String(decoding: body, as: UTF8.self), keepAlive))
            case .failed(let why): return (answers, why)
            case .needMore: break
            }
        }
        return (answers, nil)
    }

    static let stream = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n"
        + "1c\r\nevent: log\ndata: dashboard\n\n\r\n" + "1c\r\nevent: end\ndata: succeeded\n\n\r\n" + "0\r\n\r\n"
    static let whole = "HTTP/1.1 404 Not Found\r\nContent-Length: 8\r\nConnection: keep-alive\r\n\r\nno task\n"

    @Test func aStreamThenAWholeAnswerOnOneConnectionInAnyPieces() {
        for step in [1, 2, 7, 64, 4_096] {
            let (answers, failure) = Self.responses(Self.stream + Self.whole + Self.stream, step: step)
            #expect(failure == nil)
            #expect(answers.map(\.status) == [200, 404, 200], "step \(step)")
            #expect(answers.map(\.chunked) == [true, false, true])
            #expect(answers.allSatisfy { $0.keepAlive })
            #expect(answers.first?.body == "event: log\ndata: dashboard\n\nevent: end\ndata: succeeded\n\n", "the chunks' framing is taken off")
            #expect(answers.dropFirst().first?.body == "no task\n")
        }
    }

    @Test func connectionCloseAndHTTP10AnswersEndTheConnection() {
        let close = Self.whole.replacingOccurrences(of: "keep-alive", with: "close")
        #expect(Self.responses(close, step: 5).answers.map(\.keepAlive) == [false])
        let old = "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"
        #expect(Self.responses(old, step: 3).answers.map(\.keepAlive) == [false])
    }

    @Test func anAnswerWithoutALengthEndsAtTheCloseAndATruncatedOneFails() {
        let untilClose = Self.responses("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it", step: 4, closeAtEnd: true)
        #expect(untilClose.failure == nil)
        #expect(untilClose.answers.map(\.body) == ["all of it"])
        let cut = Self.responses(String(Self.stream.dropLast(5)), step: 9, closeAtEnd: true)
        #expect(cut.answers.isEmpty && cut.failure != nil, "a stream cut before its last chunk is no answer")
        #expect(Self.responses("", step: 1, closeAtEnd: true).failure == "the connection closed before a response")
    }

    @Test func bytesThatAreNoResponseFail() {
        let garbage = Self.responses("SSH-2.0-OpenSSH\r\n\r\n", step: 3)
        #expect(garbage.answers.isEmpty && garbage.failure?.hasPrefix("malformed response") == true)
        let badChunk = Self.responses("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", step: 100)
        #expect(badChunk.failure != nil)
    }
}
