// swift-tools-version:6.2
import PackageDescription

// The functions a webhook runs, heaviest first (scripts/hot-functions writes the list from
// callgrind runs): the linker lays them out first and together, so that a webhook's code sits
// on ~65 pages instead of ~190 spread over the binary's 13 MB, for fewer instruction-cache and
// TLB misses (bench/HISTORY.md). Names the binary no longer has are ignored.
let packageDirectory = String(#filePath.dropLast("Package.swift".count))
let hotFunctionsOrder = packageDirectory + "Sources/webhook-channel/hot-functions.order"

// Which branches and calls a busy server takes (an LLVM IR profile, scripts/make-profile):
// LLVM lays each function's taken path out straight, inlines along it and moves what never
// ran out of the way, so a webhook runs through a fifth fewer lines of code (README
// "Benchmarks"). A function changed since the profile was made is compiled as without one:
// staleness costs speed, never correctness. Only with the LLVM that wrote the file's format
// (Swift 6.3's) or a newer one; WEBHOOK_NO_PROFILE=1 leaves it out (scripts/make-profile's
// counting build, scripts/build-optimized's own profile).
#if compiler(>=6.3)
let releaseProfile = Context.environment["WEBHOOK_NO_PROFILE"] == nil
    ? ["-Xfrontend", "-ir-profile-use=" + packageDirectory + "Sources/webhook-channel/webhook-channel.profdata"]
    : []
#else
let releaseProfile: [String] = []
#endif

// Shared by every target: strict Swift 6 concurrency checking everywhere.
// Release builds leave out the run-time exclusivity checks (a call into the runtime on every
// access to a class property or global, ~2 % of a webhook's instructions); the compile-time
// checks stay, and debug builds, which the tests run, keep the run-time ones.
// On Linux a release build also puts every function in a section of its own, so that the
// linker can place the webhook path's functions together (`hotFunctionsOrder` above).
// And it is optimised with a profile of the server at work (`releaseProfile` above).
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
    .unsafeFlags(["-Xfrontend", "-function-sections"] + releaseProfile, .when(platforms: [.linux], configuration: .release)),
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
        // only, empty on other platforms. Imported by Platform only.
        .systemLibrary(name: "CLinux", path: "Sources/CLinux"),

        // The layers, lowest first. Each may import only what its `dependencies` list, so a
        // lower layer cannot reach a higher one; what a lower layer needs from above is
        // handed down as a closure or a protocol it owns.

        // The only target that imports Glibc or Darwin (and re-exports it: the layers above
        // use FoundationEssentials, which does not, and never the full Foundation, which would
        // bring ICU and ~5 MiB of resident pages): readiness (epoll, poll), loop
        // wake-up, state-dir watch, accept, no-SIGPIPE sends, Unix sockets, errno errors;
        // and the small utilities every layer uses (Logger, Pending, SerialWorker, ...).
        .target(name: "Platform", dependencies: ["CLinux"], swiftSettings: swiftSettings),
        // JSONValue, JSONParser, JSONWriter. Optimized in debug builds too: its string scan is
        // `SIMD16` code, which unoptimized runs lane by lane through generic witnesses (a
        // megabyte body took seconds), and the tests drive the debug binary with such bodies.
        .target(
            name: "JSON", dependencies: ["Platform"],
            swiftSettings: swiftSettings + [.unsafeFlags(["-O"], .when(configuration: .debug))]
        ),
        // EventLoop, TCPListener, TCPConnection, SocketAddress: knows nothing of HTTP.
        .target(name: "Socket", dependencies: ["Platform"], swiftSettings: swiftSettings),
        // Request parser (bytes in, request out), responses, limits, a server over any responder.
        .target(name: "HTTP", dependencies: ["Socket", "JSON", "Platform"], swiftSettings: swiftSettings),
        // HMAC via libcrypto, one descriptor per signature scheme, credentials from the RNG.
        .target(name: "Signing", dependencies: ["COpenSSL"], swiftSettings: swiftSettings),
        // JSON-RPC framing (stdin reader, stdout writer), the MCP server, tools, notifications.
        .target(name: "MCP", dependencies: ["JSON", "Platform"], swiftSettings: swiftSettings),
        // The application: state, digests, routes, tools, hub, outbound replies, CLI.
        .target(
            name: "WebhookChannel",
            dependencies: ["Platform", "JSON", "Socket", "HTTP", "Signing", "MCP", "COpenSSL"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "webhook-channel",
            dependencies: ["WebhookChannel"],
            exclude: ["hot-functions.order", "webhook-channel.profdata"],
            swiftSettings: swiftSettings,
            linkerSettings: [
                // lld (the toolchain's), which takes the list as symbol names and also links the
                // LTO build of scripts/build-optimized; names it does not find are not warned of.
                .unsafeFlags(["-use-ld=lld", "-Xlinker", "--symbol-ordering-file=\(hotFunctionsOrder)",
                              "-Xlinker", "--no-warn-symbol-ordering"],
                             .when(platforms: [.linux], configuration: .release)),
            ]
        ),
        .testTarget(
            name: "WebhookChannelTests",
            // The executable is a dependency so `swift test` builds the real binary the
            // end-to-end tests launch.
            dependencies: [
                "Platform", "JSON", "Socket", "HTTP", "Signing", "MCP", "WebhookChannel", "webhook-channel",
                "COpenSSL",  // the tests sign and serve TLS with libcrypto themselves
            ],
            // Provider payloads the tests read from disk by path (not bundled resources).
            exclude: ["Fixtures"],
            swiftSettings: swiftSettings
        ),
    ]
)
