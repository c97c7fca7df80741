#if canImport(Glibc)
import Glibc
#endif
import SwarmNode

/// Writes a file a test then executes (mode `mode`, whatever the umask), through a
/// close-on-exec descriptor and a rename (`Files.writeAtomically`).
///
/// Why not `String.write(toFile:)` or `FileManager.createFile` and a chmod: Foundation opens
/// without O_CLOEXEC, so a child that a test running in parallel spawns while the file is
/// open inherits it open for writing, and exec-ing the file fails ETXTBSY for as long as
/// that child lives (a `sleep 30` of another test: the whole test).
func writeExecutable(_ bytes: [UInt8], to path: String, mode: mode_t = 0o755) throws {
    try Files.writeAtomically(bytes, to: path, mode: mode)
}

/// `writeExecutable` for a script's text.
func writeExecutable(_ text: String, to path: String, mode: mode_t = 0o755) throws {
    try writeExecutable(Array(text.utf8), to: path, mode: mode)
}
