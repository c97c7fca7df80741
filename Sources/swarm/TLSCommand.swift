import ArgumentParser
import SwarmTransport

/// `swarm tls init DIR`: the files of certificate mode.
struct TLSCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tls", abstract: "TLS certificates for certificate mode (mutual TLS).",
        subcommands: [TLSInitCommand.self])
}

struct TLSInitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Make a CA and certificates for a scheduler, workers and clients in DIR.",
        discussion: """
        Writes ca.pem and ca-key.pem (keep the CA key off the cluster), scheduler.pem and \
        scheduler-key.pem (named scheduler.swarm, localhost, 127.0.0.1 and each --host), \
        worker-N.pem and client-N.pem with their -key.pem files (keys mode 0600). Give each role \
        its certificate, its key and ca.pem: --tls-cert, --tls-key, --tls-ca. Never overwrites a \
        file: run again on the same DIR to add certificates for more workers and clients from \
        the CA already there (N continues after the highest in DIR; the scheduler's is made \
        only when missing).
        """)

    @Argument(help: ArgumentHelp("Directory to write the files into (created if missing).", valueName: "DIR"))
    var directory: String
    @Option(parsing: .unconditional, help: ArgumentHelp("Worker certificates to make, 0 to 1000 (default 1).", valueName: "N"))
    var workers = 1
    @Option(parsing: .unconditional, help: ArgumentHelp("Client certificates to make, 0 to 1000 (default 1).", valueName: "N"))
    var clients = 1
    @Option(help: ArgumentHelp("Another name or address of the scheduler for its certificate; repeatable.", valueName: "HOST"))
    var host: [String] = []
    @Option(parsing: .unconditional, help: ArgumentHelp("Days the certificates are valid, 1 to 36500 (default 825).", valueName: "DAYS"))
    var days = 825

    func run() throws {
        do {
            let written = try TLSInit.make(directory: directory, workers: workers, clients: clients, hosts: host, days: days)
            if !written.contains(where: { $0.hasSuffix("/ca.pem") || $0 == "ca.pem" }) {
                printLine("using the existing CA in \(directory)")
            }
            for path in written { printLine("wrote \(path)") }
        } catch {
            printError("\(error)")
            throw ExitCode(2)
        }
    }
}
