import Foundation

/// The HTTP API (SPEC section 4) and the browser defences of section 5. Runs on the event
/// loop thread, which is the state actor's executor, so it uses the state synchronously.
/// Confined to the event loop thread (`@unchecked` because the compiler cannot see that).
final class WebhookRoutes: @unchecked Sendable {
    private let state: ChannelState
    private let callbackPolicy: CallbackURLPolicy
    /// When the operator bound a non-loopback address on purpose, other Host names are expected.
    private let enforceLoopbackHost: Bool
    private let log: Logger
    /// Proves a control request comes from someone who can read the state dir (the operator's
    /// CLI): the token is in a 0600 file there.
    private let controlToken: String

    /// Every rejected signature gets these exact bytes, so the answer tells an attacker nothing
    /// about which check failed.
    static let unauthorized = HTTPResponse.error(
        status: 401, code: "unauthorized", message: "Unknown source, bad or missing signature, or stale timestamp.")

    init(state: ChannelState, callbackPolicy: CallbackURLPolicy, enforceLoopbackHost: Bool, controlToken: String, log: Logger) {
        self.controlToken = controlToken
        self.state = state
        self.callbackPolicy = callbackPolicy
        self.enforceLoopbackHost = enforceLoopbackHost
        self.log = log
    }

    func respond(to request: HTTPRequest, peer: SocketAddress?) -> HTTPResponse {
        // HTTP/1.0 clients may omit Host; browsers (the rebinding threat) always send it.
        let host = request.headers["Host"]
        if enforceLoopbackHost, !(host == nil && request.version == .http10), !Self.isLoopbackHost(host) {
            return .error(status: 421, code: "misdirected_request",
                          message: "This server only answers requests addressed to localhost, 127.0.0.1 or [::1].")
        }
        let path = request.path
        switch (request.method, path) {
        case ("GET", "/health"):
            return state.assumeIsolated { state in
                state.refreshIfChanged()
                return .json([
                    "status": "ok", "sources": .int(Int64(state.sourceCount)), "pending": .int(Int64(state.pendingCount)),
                    "mcp": .string(state.isClientConnected ? "connected" : "waiting"),
                ])
            }
        case ("POST", "/pair"):
            return guardStateChange(request) ?? pair(request)
        case ("POST", "/pair/complete"):
            return guardStateChange(request) ?? completePairing(request, peer: peer)
        case ("GET", "/pair/status"):
            return pairingStatus(request)
        case ("POST", "/control/replay"):
            return guardStateChange(request) ?? replay(request, peer: peer)
        case ("POST", "/webhook"):
            return guardOrigin(request) ?? webhook(request, pathSourceID: nil)
        case ("POST", _) where path.hasPrefix("/webhook/"):
            let id = String(path.dropFirst("/webhook/".count))
            guard !id.isEmpty, !id.contains("/") else { return notFound() }
            return guardOrigin(request) ?? webhook(request, pathSourceID: id)
        default:
            if let allowed = Self.allowedMethods(path) {
                return .error(status: 405, code: "method_not_allowed", message: "Use \(allowed) for \(path).",
                              headers: [("Allow", allowed)])
            }
            return notFound()
        }
    }

    private func notFound() -> HTTPResponse {
        .error(status: 404, code: "not_found", message: "No such route.")
    }

    static func allowedMethods(_ path: String) -> String? {
        switch path {
        case "/health", "/pair/status": return "GET"
        case "/pair", "/pair/complete", "/webhook", "/control/replay": return "POST"
        default: return path.hasPrefix("/webhook/") ? "POST" : nil
        }
    }

    /// DNS rebinding defence: a browser tricked into calling us sends the attacker's host name.
    /// Accepts `localhost`, `127.0.0.1` or `[::1]` (ASCII case-insensitive), optionally with
    /// `:` and a port of ASCII digits. Runs per request, so it works on the bytes.
    static func isLoopbackHost(_ host: String?) -> Bool {
        guard let host else { return false }
        let bytes = host.utf8
        let nameEnd: String.UTF8View.Index
        if bytes.first == UInt8(ascii: "[") {
            guard let close = bytes.firstIndex(of: UInt8(ascii: "]")) else { return false }
            nameEnd = bytes.index(after: close)
        } else {
            nameEnd = bytes.firstIndex(of: UInt8(ascii: ":")) ?? bytes.endIndex
        }
        let port = bytes[nameEnd...]
        if let colon = port.first {
            guard colon == UInt8(ascii: ":"), port.dropFirst().allSatisfy({ (0x30...0x39).contains($0) }) else { return false }
        }
        let name = bytes[..<nameEnd]
        return ["localhost", "127.0.0.1", "[::1]"].contains { allowed in
            allowed.utf8.elementsEqual(name) { $0 == HTTPHeaders.asciiLowercased($1) }
        }
    }

    /// CSRF defence: browsers always send `Origin` on cross-site POSTs; senders never need it.
    private func guardOrigin(_ request: HTTPRequest) -> HTTPResponse? {
        guard request.headers.contains("Origin") else { return nil }
        return .error(status: 403, code: "origin_forbidden", message: "Requests from web pages are not accepted.")
    }

    private func guardStateChange(_ request: HTTPRequest) -> HTTPResponse? {
        if let refused = guardOrigin(request) { return refused }
        let mediaType = request.headers["Content-Type"]?.split(separator: ";").first?
            .trimmingCharacters(in: .whitespaces).lowercased()
        guard mediaType == "application/json" else {
            return .error(status: 415, code: "unsupported_media_type", message: "Send Content-Type: application/json.")
        }
        return nil
    }

    private func jsonBody(_ request: HTTPRequest) -> JSONObject? {
        guard case .object(let object)? = try? JSONParser.parse(request.body) else { return nil }
        return object
    }

    private func pair(_ request: HTTPRequest) -> HTTPResponse {
        guard let body = jsonBody(request) else {
            return .error(status: 400, code: "invalid_json", message: "The body must be a JSON object.")
        }
        guard let name = body["name"]?.stringValue?.trimmingCharacters(in: .whitespacesAndNewlines), !name.isEmpty,
              name.utf8.count <= 200, !name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
        else {
            return .error(status: 400, code: "invalid_name", message: "\"name\" must be a non-empty string of at most 200 bytes.")
        }
        var callbackURL: String? = nil
        switch body["callback_url"] {
        case nil, .null?: break
        case .string(let text)?:
            do {
                _ = try callbackPolicy.check(text)
                callbackURL = text
            } catch {
                return .error(status: 400, code: "invalid_callback_url", message: "Refused callback_url: \(error.reason).")
            }
        default:
            return .error(status: 400, code: "invalid_callback_url", message: "\"callback_url\" must be a string.")
        }
        return state.assumeIsolated { state in
            do {
                let pairing = try state.requestPairing(name: name, callbackURL: callbackURL)
                log.info("pairing requested by \(name.prefix(64)); approve with: webhook-channel pair \(pairing.code)")
                return .json([
                    "pairing_code": .string(pairing.code), "poll_token": .optionalString(pairing.pollToken),
                    "expires_in": .int(Int64(PairingBook.codeLifetime)), "interval": 2,
                ])
            } catch let error as ChannelState.PairingError {
                return pairingFailure(error)
            } catch {
                return pairingFailure(.storage(String(describing: error)))
            }
        }
    }

    private func completePairing(_ request: HTTPRequest, peer: SocketAddress?) -> HTTPResponse {
        // A tunnel or proxy forwards from localhost; its headers show the request came from afar.
        guard peer?.isLoopback == true, !request.headers.contains("Forwarded"), !request.headers.contains("X-Forwarded-For")
        else {
            return .error(status: 403, code: "forbidden", message: "Pairing can only be completed from this machine.")
        }
        guard let body = jsonBody(request) else {
            return .error(status: 400, code: "invalid_json", message: "The body must be a JSON object.")
        }
        guard let code = body["code"]?.stringValue, !code.isEmpty else {
            return .error(status: 400, code: "missing_code", message: "\"code\" must be a string.")
        }
        return state.assumeIsolated { state in
            do {
                let credentials = try state.completePairing(code: code)
                return .json(["source_id": .string(credentials.sourceID), "hmac_secret": .string(credentials.secret)])
            } catch let error as ChannelState.PairingError {
                return pairingFailure(error)
            } catch {
                return pairingFailure(.storage(String(describing: error)))
            }
        }
    }

    private func pairingFailure(_ error: ChannelState.PairingError) -> HTTPResponse {
        switch error {
        case .tooManyPending:
            return .error(status: 429, code: "too_many_pending", message: "Too many pairings are pending; try again later.",
                          headers: [("Retry-After", "60")])
        case .tooManyFailures:
            return .error(status: 429, code: "too_many_attempts", message: "Too many failed attempts; try again later.",
                          headers: [("Retry-After", "60")])
        case .unknownCode:
            return .error(status: 404, code: "unknown_code", message: "No pending pairing has that code.")
        case .expiredCode:
            return .error(status: 404, code: "expired_code", message: "That pairing code has expired; request a new one.")
        case .storage(let reason):
            log.error("pairing could not be saved: \(reason)")
            return .error(status: 503, code: "storage_unavailable", message: "The pairing could not be saved; try again.")
        }
    }

    private func pairingStatus(_ request: HTTPRequest) -> HTTPResponse {
        guard let code = request.queryParameter("code"), !code.isEmpty else {
            return .error(status: 400, code: "missing_code", message: "Pass the code as ?code=XXXXXX.")
        }
        var token: String? = nil
        if let authorization = request.headers["Authorization"], authorization.lowercased().hasPrefix("bearer ") {
            token = String(authorization.dropFirst(7)).trimmingCharacters(in: .whitespaces)
        }
        return state.assumeIsolated { state in
            let (status, credentials) = state.pairingStatus(code: code, pollToken: token)
            switch status {
            case .pending: return .json(["status": "pending"])
            case .expired: return .json(["status": "expired"])
            case .unknown: return .json(["status": "unknown"])
            case .paired:
                var answer: JSONObject = ["status": "paired"]
                if let credentials {
                    answer["source_id"] = .string(credentials.sourceID)
                    answer["hmac_secret"] = .string(credentials.secret)
                }
                return .json(.object(answer))
            }
        }
    }

    /// `webhook-channel replay EVENT_ID` asks the running server to deliver a logged event again.
    private func replay(_ request: HTTPRequest, peer: SocketAddress?) -> HTTPResponse {
        let given = request.headers["Authorization"].map { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : "" } ?? ""
        guard peer?.isLoopback == true, ConstantTime.equals(Array(given.utf8), Array(controlToken.utf8)) else {
            return .error(status: 403, code: "forbidden", message: "Control requests need the local control token.")
        }
        guard let eventID = jsonBody(request)?["event_id"]?.stringValue else {
            return .error(status: 400, code: "missing_event_id", message: "\"event_id\" must be a string.")
        }
        return state.assumeIsolated { state in
            switch state.replayEvent(id: eventID) {
            case .unknownEvent:
                return .error(status: 404, code: "unknown_event", message: "No logged event has that id.")
            case .notReady:
                return .error(status: 503, code: "not_ready", message: "Claude Code has not connected yet; retry later.")
            case .replayed:
                break
            }
            return .json(["replayed": true, "event_id": .string(eventID)])
        }
    }

    private func webhook(_ request: HTTPRequest, pathSourceID: String?) -> HTTPResponse {
        state.assumeIsolated { state in
            switch state.receiveWebhook(pathSourceID: pathSourceID, headers: request.headers, body: request.body) {
            case .accepted(let eventID):
                return .json(["received": true, "event_id": .string(eventID)])
            case .duplicate:
                return .json(["received": true, "duplicate": true])
            case .unauthorized:
                return Self.unauthorized
            case .invalidJSON:
                return .error(status: 400, code: "invalid_json", message: "The body must be JSON.")
            case .challenge(let challenge):
                return .json(["challenge": .string(challenge)])
            case .notReady:
                return .error(status: 503, code: "not_ready", message: "Claude Code has not connected yet; retry later.",
                              headers: [("Retry-After", "5")])
            }
        }
    }
}
