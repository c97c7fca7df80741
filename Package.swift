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
        .target(name: "SwarmTransport", dependencies: ["SwarmProtocol", "SwarmUV"], path: "Sources/Transport"),
        .target(
            name: "SwarmScheduler",
            dependencies: [
                "SwarmProtocol", "SwarmUV", "SwarmTransport", "SwarmArchive", "CSQLite",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Scheduler"
        ),
        .target(
            name: "SwarmNode",
            dependencies: [
                "SwarmProtocol", "SwarmUV", "SwarmTransport", "SwarmArchive",
                .product(name: "Logging", package: "swift-log"),
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
            dependencies: ["SwarmClient", "SwarmProtocol", "SwarmCluster", "SwarmNode", "SwarmUV", "SwarmArchive"],
            path: "Sources/Bench"
        ),
        .executableTarget(
            name: "swarm",
            dependencies: [
                "SwarmBench", "SwarmCluster", "SwarmScheduler", "SwarmNode", "SwarmClient", "SwarmProtocol",
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
                "SwarmTransport", "SwarmCluster", "SwarmBench", "SwarmArchive", "swarm",
            ],
            path: "Tests/SwarmTests",
            exclude: ["Fixtures"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
