// swift-tools-version:6.0
import PackageDescription

// Shared by every target: strict Swift 6 concurrency checking everywhere.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "webhook-channel",
    products: [
        .executable(name: "webhook-channel", targets: ["webhook-channel"]),
    ],
    targets: [
        // The system's libcrypto/libssl (OpenSSL 3): HMAC, RNG, constant-time compare, TLS.
        .systemLibrary(
            name: "COpenSSL",
            path: "Sources/COpenSSL",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev", "pkg-config"])]
        ),
        // Linux interfaces Glibc does not export (epoll, eventfd, flock); headers only.
        .systemLibrary(name: "CLinux", path: "Sources/CLinux"),
        .target(
            name: "WebhookChannel",
            dependencies: ["COpenSSL", "CLinux"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "webhook-channel",
            dependencies: ["WebhookChannel"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "WebhookChannelTests",
            // The executable is a dependency so `swift test` builds the real binary the
            // end-to-end tests launch.
            dependencies: ["WebhookChannel", "webhook-channel"],
            swiftSettings: swiftSettings
        ),
    ]
)
