// TEMPORARY, until the wire part (SwarmClient+Blobs.swift: uploadBlob/downloadBlob) is on
// main. When it lands, delete this file and keep only the conformance:
//     extension SwarmClient: BlobTransport {}
// (the wire part's methods have exactly these signatures).
import SwarmProtocol

extension SwarmClient: BlobTransport {
    public func uploadBlob(file path: String, sha256: String, size: Int64) throws(ClientError) {
        throw .server(.unexpected, "blob upload is not available yet")
    }
    public func downloadBlob(_ sha256: String, size: Int64, to path: String) throws(ClientError) {
        throw .server(.unexpected, "blob download is not available yet")
    }
}
