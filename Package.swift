// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "swarm",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "swarm", targets: ["swarm"]),
        // For the fuzz package in Fuzz/, which depends on this one by path (a package's
        // targets are reachable from another only through products).
        .library(name: "SwarmProtocol", targets: ["SwarmProtocol"]),
        .library(name: "SwarmClient", targets: ["SwarmClient"]),
        .library(name: "SwarmNode", targets: ["SwarmNode"]),
        .library(name: "SwarmCluster", targets: ["SwarmCluster"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
        // /metrics (issue 15): swift-metrics' API on the hot paths, exposed by swift-prometheus.
        .package(url: "https://github.com/apple/swift-metrics", exact: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", exact: "2.4.1"),
    ],
    targets: [
        // libuv from Debian's libuv1-dev, found through pkg-config.
        .systemLibrary(
            name: "CLibUV",
            path: "Sources/CLibUV",
            pkgConfig: "libuv",
            providers: [.apt(["libuv1-dev"])]
        ),
        // SQLite from Debian's libsqlite3-dev (the scheduler's durable state), through pkg-config.
        .systemLibrary(
            name: "CSQLite",
            path: "Sources/CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        // Debian's libhttp-parser-dev (the C HTTP/1.1 parser libuv servers use); no pkg-config file.
        .systemLibrary(
            name: "CHTTPParser",
            path: "Sources/CHTTPParser",
            providers: [.apt(["libhttp-parser-dev"])]
        ),
        // OpenSSL 3 from Debian's libssl-dev (TLS 1.3 over memory BIOs; `swarm tls init`).
        .systemLibrary(
            name: "COpenSSL",
            path: "Sources/COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]
        ),
        // The only module that touches uv_*: one final class per handle kind.
        .target(name: "SwarmUV", dependencies: ["CLibUV"], path: "Sources/UV"),
        // Pure framing, messages and handshake: no sockets.
        .target(
            name: "SwarmProtocol",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            path: "Sources/Protocol"
        ),
        // Inputs packed and unpacked (issue 11): the archive format and its path checks.
        .target(name: "SwarmArchive", dependencies: ["SwarmProtocol"], path: "Sources/Archive"),
        // Framed, message-level connections over UVTCP, shared by scheduler, worker and client.
        .target(name: "SwarmTransport", dependencies: ["COpenSSL", "SwarmProtocol", "SwarmUV"], path: "Sources/Transport"),
        // HTTP/1.1 over UVTCP: request parser, per-connection state machine, router, server; HTTPS
        // through SwarmTransport's TLSSession.
        .target(name: "SwarmHTTP", dependencies: ["CHTTPParser", "SwarmTransport", "SwarmUV"], path: "Sources/HTTP"),
        // The web dashboard's static files, its /api/ routes (parsed, bounded) and log streams.
        .target(name: "SwarmDashboard", dependencies: ["SwarmHTTP", "SwarmProtocol"], path: "Sources/Dashboard"),
        // Prometheus metrics of the scheduler and the worker: a registry per process.
        .target(
            name: "SwarmMetrics",
            dependencies: [
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            path: "Sources/Metrics"
        ),
        .target(
            name: "SwarmScheduler",
            dependencies: [
                "SwarmProtocol", "SwarmUV", "SwarmTransport", "SwarmArchive", "CSQLite", "SwarmHTTP", "SwarmMetrics",
                "SwarmDashboard",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            path: "Sources/Scheduler"
        ),
        .target(
            name: "SwarmNode",
            dependencies: [
                "SwarmProtocol", "SwarmUV", "SwarmTransport", "SwarmArchive", "SwarmHTTP", "SwarmMetrics",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            path: "Sources/Node"
        ),
        .target(
            name: "SwarmClient",
            dependencies: ["SwarmProtocol", "SwarmUV", "SwarmTransport", "SwarmArchive"],
            path: "Sources/Client"
        ),
        .target(
            name: "SwarmCluster",
            dependencies: [
                "SwarmScheduler", "SwarmNode", "SwarmClient", "SwarmUV",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Cluster"
        ),
        // `swarm bench`: workloads, measurements, baselines and the report renderers.
        .target(
            name: "SwarmBench",
            dependencies: ["SwarmClient", "SwarmProtocol", "SwarmCluster", "SwarmNode", "SwarmUV", "SwarmArchive", "SwarmHTTP"],
            path: "Sources/Bench"
        ),
        .executableTarget(
            name: "swarm",
            dependencies: [
                "SwarmBench", "SwarmCluster", "SwarmScheduler", "SwarmNode", "SwarmClient", "SwarmProtocol", "SwarmTransport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/swarm"
        ),
        // `swift build -c release --product swarm-placement-bench`: placement throughput.
        .executableTarget(
            name: "swarm-placement-bench",
            dependencies: ["SwarmScheduler", "SwarmProtocol"],
            path: "Benchmarks/PlacementBench"
        ),
        .testTarget(
            name: "SwarmTests",
            dependencies: [
                "SwarmProtocol", "SwarmScheduler", "SwarmNode", "SwarmClient", "SwarmUV",
                "SwarmTransport", "SwarmCluster", "SwarmBench", "SwarmArchive", "SwarmHTTP", "SwarmMetrics", "SwarmDashboard", "swarm",
            ],
            path: "Tests/SwarmTests",
            exclude: ["Fixtures"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
