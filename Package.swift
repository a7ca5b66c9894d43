// swift-tools-version:6.2
import PackageDescription

/// Every target of ours: existential `any` spelled out, and warnings are errors (STYLE §3).
let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .treatAllWarnings(as: .error),
]

let package = Package(
    name: "isobar",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "isobar", targets: ["isobar"]),
        .library(name: "IsobarModel", targets: ["IsobarModel"]),
        .library(name: "IsobarWire", targets: ["IsobarWire"]),
        .library(name: "IsobarRouting", targets: ["IsobarRouting"]),
        .library(name: "IsobarGossip", targets: ["IsobarGossip"]),
        .library(name: "IsobarConfig", targets: ["IsobarConfig"]),
        .library(name: "IsobarGateway", targets: ["IsobarGateway"]),
        .library(name: "IsobarEmulator", targets: ["IsobarEmulator"]),
        .library(name: "IsobarEngineModel", targets: ["IsobarEngineModel"]),
        .library(name: "IsobarSimulator", targets: ["IsobarSimulator"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-numerics", from: "1.1.1"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        // MARK: - Pure vocabulary and logic
        .target(name: "IsobarModel", swiftSettings: strict),
        .target(name: "IsobarWire", dependencies: ["IsobarModel"], swiftSettings: strict),
        .target(
            name: "IsobarRouting",
            dependencies: ["IsobarModel", .product(name: "DequeModule", package: "swift-collections")],
            swiftSettings: strict
        ),
        .target(
            name: "IsobarGossip",
            dependencies: ["IsobarModel", .product(name: "RealModule", package: "swift-numerics")],
            swiftSettings: strict
        ),
        .target(
            name: "IsobarConfig",
            dependencies: [
                "IsobarModel", .product(name: "Yams", package: "Yams"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "IsobarEngineModel",
            dependencies: ["IsobarModel", .product(name: "DequeModule", package: "swift-collections")],
            swiftSettings: strict
        ),
        .systemLibrary(name: "CZlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CHiredis", pkgConfig: "hiredis", providers: [.apt(["libhiredis-dev"])]),

        // MARK: - Shells
        .target(
            name: "IsobarGateway",
            dependencies: [
                "IsobarModel", "IsobarWire", "IsobarRouting", "IsobarGossip", "CHiredis",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "IsobarSimulator",
            dependencies: [
                "IsobarModel", "IsobarRouting", "IsobarGossip", "IsobarEngineModel", "IsobarWire", "CZlib",
                .product(name: "DequeModule", package: "swift-collections"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "IsobarEmulator",
            dependencies: [
                "IsobarModel", "IsobarWire", "IsobarGateway", "IsobarEngineModel",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "IsobarBenchmarks",
            dependencies: [
                "IsobarModel", "IsobarEngineModel", "IsobarRouting", "IsobarSimulator", "IsobarConfig", "IsobarGossip",
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "isobar",
            dependencies: [
                "IsobarModel", "IsobarConfig", "IsobarGateway", "IsobarEmulator", "IsobarSimulator",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),

        // MARK: - Tests
        .testTarget(name: "IsobarModelTests", dependencies: ["IsobarModel"], swiftSettings: strict),
        .testTarget(
            name: "IsobarWireTests",
            dependencies: ["IsobarWire", "IsobarModel"],
            exclude: ["Fixtures"],
            swiftSettings: strict
        ),
        .testTarget(name: "IsobarRoutingTests", dependencies: ["IsobarRouting"], swiftSettings: strict),
        .testTarget(name: "IsobarGossipTests", dependencies: ["IsobarGossip"], swiftSettings: strict),
        .testTarget(name: "IsobarConfigTests", dependencies: ["IsobarConfig"], swiftSettings: strict),
        .testTarget(name: "IsobarEngineModelTests", dependencies: ["IsobarEngineModel"], swiftSettings: strict),
        .testTarget(
            name: "IsobarSimulatorTests",
            dependencies: ["IsobarSimulator", "IsobarConfig"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "IsobarGatewayTests",
            dependencies: [
                "IsobarGateway", "IsobarGossip",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "IsobarIntegrationTests",
            dependencies: [
                "IsobarGateway", "IsobarEmulator", "IsobarConfig", "IsobarWire",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
    ]
)
