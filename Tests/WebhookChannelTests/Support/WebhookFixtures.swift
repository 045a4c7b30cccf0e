import Foundation
import Testing

/// What `/pair/complete` (or `webhook-channel pair CODE`) hands a sender.
struct SourceCredentials: Sendable, Equatable {
    let sourceID: String
    let secret: String
}

/// What `POST /pair` answers.
struct PairingTicket: Sendable {
    let code: String
    let pollToken: String
    let response: JSON
}

enum SigningScheme: Sendable {
    /// `X-Signature: v1=…` over `"<ts>.<body>"`.
    case v1
    /// `X-Signature: sha256=…` over the body (the seed's scheme).
    case seed
}

/// Exact formats from SPEC section 4.
enum Formats {
    static var pairingCode: Regex<Substring> { #/^[ABCDEFGHJKLMNPQRSTUVWXYZ23456789]{6}$/# }
    static var sourceID: Regex<Substring> { #/^src_[0-9a-f]{32}$/# }
    static var secret: Regex<Substring> { #/^whsec_[0-9a-f]{64}$/# }
    static var metaKey: Regex<Substring> { #/^[A-Za-z0-9_]+$/# }
    /// Anywhere in a text: a source id / a secret as the CLI prints them.
    static var sourceIDInText: Regex<Substring> { #/src_[0-9a-f]{32}/# }
    static var secretInText: Regex<Substring> { #/whsec_[0-9a-f]{64}/# }
}

extension RawHTTPClient {
    /// `POST /pair {name, callback_url?}`; fails unless it answers 200 with a code and token.
    func requestPairing(name: String, callbackURL: String? = nil) async throws -> PairingTicket {
        var body: [String: JSON] = ["name": .string(name)]
        if let callbackURL { body["callback_url"] = .string(callbackURL) }
        let response = try await postJSON("/pair", .object(body))
        guard response.status == 200 else { throw HarnessError("POST /pair answered \(response)") }
        let json = try response.json()
        guard let code = json["pairing_code"]?.stringValue, let token = json["poll_token"]?.stringValue else {
            throw HarnessError("POST /pair answer lacks pairing_code or poll_token: \(json)")
        }
        return PairingTicket(code: code, pollToken: token, response: json)
    }

    /// `POST /pair/complete {code}`; fails unless it answers 200 with both credentials.
    func completePairing(code: String) async throws -> SourceCredentials {
        let response = try await postJSON("/pair/complete", ["code": .string(code)])
        guard response.status == 200 else { throw HarnessError("POST /pair/complete answered \(response)") }
        let json = try response.json()
        guard let id = json["source_id"]?.stringValue, let secret = json["hmac_secret"]?.stringValue else {
            throw HarnessError("POST /pair/complete answer lacks source_id or hmac_secret: \(json)")
        }
        return SourceCredentials(sourceID: id, secret: secret)
    }

    /// Pairs a new source over HTTP (request + local completion).
    func pairSource(name: String = "ci", callbackURL: String? = nil) async throws -> SourceCredentials {
        let ticket = try await requestPairing(name: name, callbackURL: callbackURL)
        return try await completePairing(code: ticket.code)
    }

    /// The seed-style headers for a signed `POST /webhook`.
    static func webhookHeaders(
        _ credentials: SourceCredentials, body: Data,
        scheme: SigningScheme = .v1, timestamp: Int = unixNow()
    ) -> [(String, String)] {
        let ts = String(timestamp)
        let signature = switch scheme {
        case .v1: TestSigner.v1Signature(secret: credentials.secret, timestamp: ts, body: body)
        case .seed: TestSigner.seedSignature(secret: credentials.secret, body: body)
        }
        return [("X-Source-Id", credentials.sourceID), ("X-Timestamp", ts), ("X-Signature", signature)]
    }

    /// A correctly signed `POST /webhook` with `Content-Type: application/json`.
    func postWebhook(
        _ body: String, as credentials: SourceCredentials,
        scheme: SigningScheme = .v1, timestamp: Int = unixNow(),
        extraHeaders: [(String, String)] = []
    ) async throws -> RawHTTPResponse {
        let data = Data(body.utf8)
        return try await postJSON(
            "/webhook", body: data,
            headers: Self.webhookHeaders(credentials, body: data, scheme: scheme, timestamp: timestamp) + extraHeaders)
    }
}

/// A started server with an MCP client and an HTTP client for it: the usual start of an
/// end-to-end test.
///
/// ```swift
/// let channel = try await TestChannel.start()      // own port, own temp state dir
/// defer { channel.stop() }                         // kills the child, removes the dir
/// let credentials = try await channel.http.pairSource(name: "ci")
/// _ = try await channel.http.postWebhook(#"{"event":"x"}"#, as: credentials)
/// let event = try await channel.mcp.channelEvent() // bounded wait
/// ```
///
/// Building blocks, each usable alone: `ServerProcess` (spawn, port discovery),
/// `MCPTestClient` (stdio JSON-RPC), `RawHTTPClient`/`HTTPConnection` (exact bytes,
/// keep-alive), `TestSigner` (libcrypto HMAC), `CallbackReceiver` (a callback URL),
/// `TempStateDir` (state files), `runCLI` (operator commands).
struct TestChannel: Sendable {
    let server: ServerProcess
    let mcp: MCPTestClient
    let http: RawHTTPClient

    /// Starts the real binary; with `handshake` the MCP session is initialized (so channel
    /// events flow at once), otherwise nothing has been sent on stdin yet.
    static func start(
        stateDir: TempStateDir? = nil,
        environment: [String: String] = [:],
        handshake: Bool = true,
        beforeLaunch: (TempStateDir) throws -> Void = { _ in }
    ) async throws -> TestChannel {
        let server = try await ServerProcess.start(stateDir: stateDir, environment: environment, beforeLaunch: beforeLaunch)
        let channel = TestChannel(server: server, mcp: MCPTestClient(server), http: RawHTTPClient(port: server.port))
        if handshake {
            do {
                try await channel.mcp.handshake()
            } catch {
                server.stop()
                throw error
            }
        }
        return channel
    }

    func stop() { server.stop() }

    var stateDir: TempStateDir { server.stateDir }
}

/// Fails the test unless `response` is a JSON error answer `{"error": code, "message": …}`
/// with the given status.
func expectJSONError(
    _ response: RawHTTPResponse, status: Int, error code: String? = nil,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(response.status == status, "\(response)", sourceLocation: sourceLocation)
    #expect(response.header("Content-Type")?.lowercased().hasPrefix("application/json") == true,
            "Content-Type of \(response)", sourceLocation: sourceLocation)
    let json = try? response.json()
    if let code {
        #expect(json?["error"] == .string(code), "\(response)", sourceLocation: sourceLocation)
    } else {
        #expect(json?["error"]?.stringValue?.isEmpty == false, "\(response)", sourceLocation: sourceLocation)
    }
    #expect(json?["message"]?.stringValue?.isEmpty == false, "\(response)", sourceLocation: sourceLocation)
}
