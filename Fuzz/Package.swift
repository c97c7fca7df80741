// swift-tools-version:6.0
// libFuzzer targets for swarm's decoders, parsers and handshake (issue 12, item 4). A package of
// its own that depends on the main one by path, so `swift build` / `swift test` at the top are
// untouched. Build and run with `scripts/fuzz.sh TARGET SECONDS`: it passes
// `-sanitize=fuzzer,address` (coverage in every Swift module; libFuzzer and ASan at link),
// `-use-ld=lld` and `-enable-testing` (the JSON target reads the internal `MessageCodec.Probe`).
import PackageDescription

func fuzzTarget(_ name: String, _ products: [String]) -> Target {
    .executableTarget(
        name: name,
        dependencies: ["FuzzSupport"] + products.map { .product(name: $0, package: "swarm") },
        path: "Sources/\(name)"
    )
}

let package = Package(
    name: "swarm-fuzz",
    platforms: [.macOS(.v14)],
    dependencies: [.package(name: "swarm", path: "..")],
    targets: [
        // The declaration of libFuzzer's `LLVMFuzzerRunDriver`.
        .target(name: "CFuzzer", path: "Sources/CFuzzer"),
        // The driver loop, input reading and failure report every target shares.
        .target(name: "FuzzSupport", dependencies: ["CFuzzer"], path: "Sources/FuzzSupport"),
        fuzzTarget("fuzz-frames", ["SwarmProtocol"]),
        fuzzTarget("fuzz-json", ["SwarmProtocol"]),
        fuzzTarget("fuzz-handshake", ["SwarmProtocol"]),
        fuzzTarget("fuzz-taskfile", ["SwarmClient", "SwarmProtocol"]),
        fuzzTarget("fuzz-clusterfile", ["SwarmCluster", "SwarmNode", "SwarmProtocol"]),
    ],
    swiftLanguageModes: [.v6]
)
