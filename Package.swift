// swift-tools-version:6.0
import PackageDescription

// Shared by every target: strict Swift 6 concurrency checking everywhere.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "webhook-channel",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "webhook-channel", targets: ["webhook-channel"]),
    ],
    targets: [
        // The system's libcrypto/libssl (OpenSSL 3): HMAC, RNG, constant-time compare, TLS.
        // pkg-config finds it; on macOS that is Homebrew's openssl@3 (scripts/launch sets
        // PKG_CONFIG_PATH from `brew --prefix openssl@3`).
        .systemLibrary(
            name: "COpenSSL",
            path: "Sources/COpenSSL",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev", "pkg-config"]), .brew(["openssl@3"])]
        ),
        // Linux interfaces Glibc does not export (epoll, eventfd, inotify, accept4); headers
        // only, empty on other platforms. Imported by Sources/WebhookChannel/Platform only.
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
