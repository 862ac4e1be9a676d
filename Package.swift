// swift-tools-version:6.1
import Foundation
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "souk",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "souk", targets: ["souk"]),
        .library(name: "SoukCore", targets: ["SoukCore"]),
        .library(name: "SoukSQL", targets: ["SoukSQL"]),
        .library(name: "SoukServer", targets: ["SoukServer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth", from: "2.5.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/vapor/sqlite-nio", from: "1.13.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        // Tests only: property-based checks of every reader of client input.
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
    ],
    targets: [
        // Domain types, rules and ports. Imports nothing of ours and no server framework (NIOCore's futures only).
        .target(
            name: "SoukCore",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                // EventLoopFuture only, for the ports that answer on an event loop.
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The relational backend: SQLite (embedded) and PostgreSQL, one set of stores over both.
        .target(
            name: "SoukSQL",
            dependencies: [
                "SoukCore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // RESP3, the Redis wire protocol: tokens, values, commands. No connections here.
        .target(
            name: "RESP",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Our Redis client on SwiftNIO (pipelined connections, pool, scripts, streams, pub/sub) and
        // the Redis backends of Souk's ports.
        .target(
            name: "SoukRedis",
            dependencies: [
                "RESP", "SoukCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // Background work: the stream consumers that persist admitted flash-sale orders, the reconciler,
        // the checkout saga, the price feed, jobs; and Souk's client for outside services (AsyncHTTPClient).
        .target(
            name: "SoukWorkers",
            dependencies: [
                "SoukCore", "SoukRedis", "RESP",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        // libvips, through pkg-config; a few inline C wrappers stand in for its variadic calls.
        .systemLibrary(name: "CVips", path: "Sources/CVips", pkgConfig: "vips", providers: [.apt(["libvips-dev"])]),
        // Image decoding and thumbnails on libvips: the ImageProcessor port's backend.
        .target(
            name: "SoukImages",
            dependencies: [
                "SoukCore", "CVips",
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The Hummingbird application: JSON API, HTML pages, sessions, CSRF, error mapping.
        .target(
            name: "SoukServer",
            dependencies: [
                "SoukCore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            // The OpenAPI document, compiled into the binary (served at /openapi.json and /docs).
            resources: [.embedInCode("Resources/openapi.json")],
            swiftSettings: swiftSettings
        ),
        // The executable: argument parsing, configuration and wiring only.
        .executableTarget(
            name: "souk",
            dependencies: [
                "SoukCore", "SoukSQL", "SoukServer", "SoukRedis", "SoukWorkers", "SoukImages",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Test support: the storage conformance suite and real-server helpers.
        .target(
            name: "SoukTesting",
            dependencies: [
                "SoukCore", "SoukSQL", "SoukRedis", "SoukWorkers",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RESPTests",
            dependencies: [
                "RESP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SoukRedisTests",
            dependencies: ["RESP", "SoukRedis", "SoukCore", "SoukSQL", "SoukWorkers", "SoukTesting"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SoukCoreTests",
            dependencies: ["SoukCore"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SoukSQLTests",
            dependencies: ["SoukCore", "SoukSQL", "SoukTesting"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SoukServerTests",
            dependencies: [
                "SoukCore", "SoukSQL", "SoukServer", "SoukWorkers", "SoukTesting", "SoukImages", "RESP",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)

// libFuzzer targets over what Souk reads from clients and servers (Fuzz/, run by scripts/fuzz). Only
// declared when asked for: the target has no `main` of its own (libFuzzer's is linked in with
// `--sanitize fuzzer`), so ordinary builds must not try to link it.
if ProcessInfo.processInfo.environment["SOUK_FUZZ"] != nil {
    package.targets.append(.executableTarget(
        name: "souk-fuzz",
        dependencies: ["SoukCore", "SoukSQL", "SoukServer", "RESP", .product(name: "NIOCore", package: "swift-nio"), .product(name: "Hummingbird", package: "hummingbird")],
        path: "Fuzz/SoukFuzz",
        swiftSettings: swiftSettings + [.unsafeFlags(["-parse-as-library"])]
    ))
    package.products.append(.executable(name: "souk-fuzz", targets: ["souk-fuzz"]))
}
