// TEMPORARY (removed on rebase): stands in for the wire helper's SwarmClient.uploadBlob /
// downloadBlob until they are on main.
import SwarmProtocol

extension SwarmClient: BlobTransport {
    public func uploadBlob(file path: String, sha256: String, size: Int64) throws(ClientError) {
        throw .server(.unexpected, "blob upload is not available yet")
    }
    public func downloadBlob(_ sha256: String, size: Int64, to path: String) throws(ClientError) {
        throw .server(.unexpected, "blob download is not available yet")
    }
}
