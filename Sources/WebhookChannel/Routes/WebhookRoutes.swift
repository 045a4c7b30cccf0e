#if canImport(FoundationEssentials)
import FoundationEssentials  // Linux: Foundation without ICU
#else
import Foundation
#endif
import Platform
import JSON
import Socket
import HTTP
import Signing

/// The HTTP API (README "HTTP API") and the browser defences of "Security model". Runs on the event
/// loop thread, which is the state actor's executor, so it uses the state synchronously.
/// Confined to the event loop thread (`@unchecked` because the compiler cannot see that).
final class WebhookRoutes: Sendable {
    private let state: ChannelState
    private let callbackPolicy: CallbackURLPolicy
    /// When the operator bound a non-loopback address on purpose, other Host names are expected.
    private let enforceLoopbackHost: Bool
    /// The loopback address the server is bound to, as a `Host` names it, when it is not one
    /// of the three names always accepted (`WEBHOOK_HOST=127.0.0.2`: the URL `add` prints).
    private let boundHostName: [UInt8]?
    private let log: Logger
    /// Proves a control request comes from someone who can read the state dir (the operator's
    /// CLI): the token is in a 0600 file there.
    private let controlToken: String
    /// Connected sessions (the hub's own included), for `/health`.
    private let sessions: @Sendable () -> Int

    /// Every rejected signature gets these exact bytes, so the answer tells an attacker nothing
    /// about which check failed.
    static let unauthorized = HTTPResponse.error(
        status: 401, code: "unauthorized", message: "Unknown source, bad or missing signature, or stale timestamp.")

    init(state: ChannelState, callbackPolicy: CallbackURLPolicy, enforceLoopbackHost: Bool, boundHost: String = "127.0.0.1",
         controlToken: String, sessions: @escaping @Sendable () -> Int, log: Logger)
    {
        let bound = Array((boundHost.contains(":") && !boundHost.hasPrefix("[") ? "[\(boundHost)]" : boundHost).lowercased().utf8)
        boundHostName = Self.loopbackNames.contains(bound) || bound.isEmpty ? nil : bound
        self.controlToken = controlToken
        self.sessions = sessions
        self.state = state
        self.callbackPolicy = callbackPolicy
        self.enforceLoopbackHost = enforceLoopbackHost
        self.log = log
    }

    /// Unauthenticated JSON routes read small bodies; anything larger is refused before it
    /// is looked at.
    static let maxJSONRouteBodyBytes = 64 * 1024

    /// From the head alone, before the body is read or `100 Continue` invites it: a JSON
    /// route's `Content-Length` over its 64 KiB (SPEC 5: refused from the length).
    /// The host is checked first, as `respond` checks it.
    func screen(_ head: HTTPRequestHead) -> HTTPResponse? {
        guard head.method == "POST", let length = head.contentLength, length > Self.maxJSONRouteBodyBytes else { return nil }
        // Routed as `respond` routes it: an absolute-form target (`http://host/pair`) too.
        let request = HTTPRequest(method: head.method, target: head.target, version: head.version, headers: head.headers)
        if let misdirected = misdirected(request) { return misdirected }
        guard ["/pair", "/pair/complete", "/control/replay"].contains(request.path) else { return nil }
        return Self.jsonRouteTooLarge
    }

    /// DNS rebinding defence: `421` unless the request is addressed to a loopback name.
    /// HTTP/1.0 clients may omit Host; browsers (the rebinding threat) always send it. An
    /// absolute-form target's authority stands in for Host (RFC 9112 section 3.2.2).
    private func misdirected(_ request: HTTPRequest) -> HTTPResponse? {
        let host = request.authority ?? request.headers["Host"]
        guard enforceLoopbackHost, !(host == nil && request.version == .http10), !Self.isLoopbackHost(host, alsoAllowing: boundHostName) else { return nil }
        return Self.misdirectedRequest
    }

    private static let misdirectedRequest = HTTPResponse.error(
        status: 421, code: "misdirected_request",
        message: "This server only answers requests addressed to localhost, 127.0.0.1, [::1] or the address it is bound to.")

    private static let jsonRouteTooLarge = HTTPResponse.error(
        status: 413, code: "payload_too_large", message: "This route accepts at most \(maxJSONRouteBodyBytes) bytes.")

    func respond(to request: HTTPRequest, peer: SocketAddress?) -> HTTPReply {
        if let misdirected = misdirected(request) { return .now(misdirected) }
        guard Self.isKnownMethod(request.method) else {
            return .now(.error(status: 501, code: "not_implemented",
                               message: "This server does not implement the \(request.method.prefix(32)) method."))
        }
        let path = request.path
        switch (request.method, path) {
        case ("GET", "/health"), ("HEAD", "/health"):
            return .now(health())
        case ("POST", "/pair"):
            return guardJSONRoute(request) ?? pair(request)
        case ("POST", "/pair/complete"):
            return guardJSONRoute(request) ?? completePairing(request, peer: peer)
        case ("GET", "/pair/status"):
            // A poll with the token hands the credentials out once: a change of state, so no
            // web page may make it (its answer is not readable cross-site anyway).
            return guardOrigin(request).map(HTTPReply.now) ?? pairingStatus(request)
        case ("POST", "/control/replay"):
            return guardJSONRoute(request) ?? replay(request, peer: peer)
        case ("POST", "/webhook"):
            return guardOrigin(request).map(HTTPReply.now) ?? webhook(request, pathSourceID: nil)
        case ("POST", _) where Self.isSourceWebhookPath(path):
            let id = String(path.dropFirst("/webhook/".count))
            return guardOrigin(request).map(HTTPReply.now) ?? webhook(request, pathSourceID: id)
        default:
            if let allowed = Self.allowedMethods(path) {
                return .now(.error(status: 405, code: "method_not_allowed", message: "Use \(allowed) for \(path).",
                                   headers: [("Allow", allowed)]))
            }
            return .now(notFound())
        }
    }

    private func health() -> HTTPResponse {
        let sessions = self.sessions()
        return state.assumeIsolated { state in
            state.refreshIfChanged()
            return .json([
                "status": "ok", "sources": .int(Int64(state.sourceCount)), "pending": .int(Int64(state.pendingCount)),
                "mcp": .string(state.isClientConnected ? "connected" : "waiting"), "sessions": .int(Int64(sessions)),
            ])
        }
    }

    private func notFound() -> HTTPResponse {
        .error(status: 404, code: "not_found", message: "No such route.")
    }

    /// The methods HTTP defines (RFC 9110 section 9, and PATCH): any other is `501`, a known
    /// one a route does not take is `405`.
    /// A `switch`, not a `Set`: these are small strings, compared as two words each, where a
    /// set lookup hashes the method first (every request).
    static func isKnownMethod(_ method: String) -> Bool {
        switch method {
        case "POST", "GET", "HEAD", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH": return true
        default: return false
        }
    }

    /// `HEAD` is answered where it is safe, `/health`; `/pair/status` is not, since a poll may
    /// hand out credentials once and a `HEAD` would spend them unseen.
    static func allowedMethods(_ path: String) -> String? {
        switch path {
        case "/health": return "GET, HEAD"
        case "/pair/status": return "GET"
        case "/pair", "/pair/complete", "/webhook", "/control/replay": return "POST"
        default: return isSourceWebhookPath(path) ? "POST" : nil
        }
    }

    /// `/webhook/<id>`: one non-empty segment after the prefix. `/webhook/` and deeper paths
    /// are no route for any method (404), so no `405` offers them a `POST` they would refuse.
    static func isSourceWebhookPath(_ path: String) -> Bool {
        guard path.hasPrefix("/webhook/") else { return false }
        let id = path.utf8.dropFirst("/webhook/".utf8.count)
        return !id.isEmpty && !id.contains(UInt8(ascii: "/"))
    }

    /// DNS rebinding defence: a browser tricked into calling us sends the attacker's host name.
    /// Accepts `localhost`, `127.0.0.1` or `[::1]` (ASCII case-insensitive), and the address
    /// the server is bound to when that is another loopback literal (a literal cannot be
    /// rebound), optionally with `:` and a port of ASCII digits. Runs per request, so it works
    /// on the bytes.
    private static let loopbackNames: [[UInt8]] = ["localhost", "127.0.0.1", "[::1]"].map { Array($0.utf8) }

    static func isLoopbackHost(_ host: String?, alsoAllowing bound: [UInt8]? = nil) -> Bool {
        guard let host else { return false }
        return host.withUTF8Bytes { bytes in
            var nameEnd = bytes.count
            if bytes.first == UInt8(ascii: "[") {
                guard let close = bytes.firstIndex(of: UInt8(ascii: "]")) else { return false }
                nameEnd = close + 1
            } else if let colon = bytes.firstIndex(of: UInt8(ascii: ":")) {
                nameEnd = colon
            }
            if nameEnd < bytes.count {
                guard bytes[nameEnd] == UInt8(ascii: ":") else { return false }
                for index in (nameEnd + 1)..<bytes.count where !(0x30...0x39).contains(bytes[index]) { return false }
            }
            let names = UnsafeBufferPointer(rebasing: bytes[0..<nameEnd])
            return Self.loopbackNames.contains { Self.equalIgnoringCase(names, $0) } || bound.map { Self.equalIgnoringCase(names, $0) } == true
        }
    }

    /// Whether `bytes` are `lowercased` (ASCII letters in any case).
    private static func equalIgnoringCase(_ bytes: UnsafeBufferPointer<UInt8>, _ lowercased: [UInt8]) -> Bool {
        guard bytes.count == lowercased.count else { return false }
        for index in 0..<bytes.count where lowercased[index] != HTTPHeaders.asciiLowercased(bytes[index]) { return false }
        return true
    }

    /// CSRF defence: browsers always send `Origin` on cross-site POSTs; senders never need it.
    private func guardOrigin(_ request: HTTPRequest) -> HTTPResponse? {
        guard request.headers.contains("Origin") else { return nil }
        return .error(status: 403, code: "origin_forbidden", message: "Requests from web pages are not accepted.")
    }

    /// The JSON routes: no `Origin`, `Content-Type: application/json`, at most 64 KiB.
    private func guardJSONRoute(_ request: HTTPRequest) -> HTTPReply? {
        if let refused = guardOrigin(request) { return .now(refused) }
        guard MediaType.isJSON(request.headers["Content-Type"], allowSuffix: false) else {
            return .now(.error(status: 415, code: "unsupported_media_type", message: "Send Content-Type: application/json."))
        }
        guard request.body.count <= Self.maxJSONRouteBodyBytes else { return .now(Self.jsonRouteTooLarge) }
        return nil
    }

    /// The named top-level members of a JSON object body, read without building a tree; nil
    /// when the body is not a JSON object (or nests deeper than the parser allows).
    private func fields(_ request: HTTPRequest, _ names: [String]) -> JSONParser.TopLevelFields? {
        guard let found = try? request.body.withUnsafeBufferPointer({ bytes throws(JSONParseError) in
            try JSONParser.fields(in: bytes, named: names)
        }), found.isObject else { return nil }
        return found
    }

    private static let notAnObject = HTTPReply.now(
        .error(status: 400, code: "invalid_json", message: "The body must be a JSON object."))

    private func pair(_ request: HTTPRequest) -> HTTPReply {
        guard let body = fields(request, ["name", "callback_url"]) else { return Self.notAnObject }
        guard let name = body.strings["name"].flatMap(SourceName.validated) else {
            return .now(.error(status: 400, code: "invalid_name", message: "\"name\" must be \(SourceName.rule)."))
        }
        if body.otherValues.contains("callback_url") {
            return .now(.error(status: 400, code: "invalid_callback_url", message: "\"callback_url\" must be a string."))
        }
        let callbackURL = body.strings["callback_url"]
        if let callbackURL {
            do { _ = try callbackPolicy.check(callbackURL) } catch {
                return .now(.error(status: 400, code: "invalid_callback_url", message: "Refused callback_url: \(error.reason)."))
            }
        }
        let log = self.log
        return .later(state.assumeIsolated { $0.requestPairing(name: name, callbackURL: callbackURL) }.map { result in
            switch result {
            case .success(let pairing):
                log.info("pairing requested by \(name.prefix(64)); approve with: webhook-channel pair \(pairing.code)")
                return .json([
                    "pairing_code": .string(pairing.code), "poll_token": .optionalString(pairing.pollToken),
                    "expires_in": .int(Int64(PairingBook.codeLifetime)), "interval": 2,
                ])
            case .failure(let error):
                return Self.pairingFailure(error, log: log)
            }
        })
    }

    private func completePairing(_ request: HTTPRequest, peer: SocketAddress?) -> HTTPReply {
        // A tunnel or proxy forwards from localhost; its headers show the request came from afar.
        guard let peer, peer.isLoopback, !request.headers.contains("Forwarded"), !request.headers.contains("X-Forwarded-For")
        else {
            return .now(.error(status: 403, code: "forbidden", message: "Pairing can only be completed from this machine."))
        }
        guard let body = fields(request, ["code"]) else { return Self.notAnObject }
        guard let code = body.strings["code"], !code.isEmpty else {
            return .now(.error(status: 400, code: "missing_code", message: "\"code\" must be a string."))
        }
        let log = self.log
        return .later(state.assumeIsolated { $0.completePairing(code: code, peer: peer.host) }.map { result in
            switch result {
            case .success(let credentials):
                return .json(["source_id": .string(credentials.sourceID), "hmac_secret": .string(credentials.secret)])
            case .failure(let error):
                return Self.pairingFailure(error, log: log)
            }
        })
    }

    private static func pairingFailure(_ error: PairingDesk.Failure, log: Logger) -> HTTPResponse {
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
        case .stateBusy(let reason):
            // Nothing was written: the client asks again, and gets its answer once the lock is free.
            log.warning("pairing not saved, answered 503 state_busy: \(reason)")
            return .error(status: 503, code: "state_busy",
                          message: "Another process holds the state directory's lock; try again.",
                          headers: [("Retry-After", "1")])
        case .storage(let reason):
            log.error("pairing could not be saved: \(reason)")
            return .error(status: 503, code: "storage_unavailable", message: "The pairing could not be saved; try again.")
        }
    }

    private func pairingStatus(_ request: HTTPRequest) -> HTTPReply {
        guard let code = request.queryParameter("code"), !code.isEmpty else {
            return .now(.error(status: 400, code: "missing_code", message: "Pass the code as ?code=XXXXXX."))
        }
        let token = Self.bearerToken(request)
        let log = self.log
        return .later(state.assumeIsolated { $0.pairingStatus(code: code, pollToken: token) }.map { result in
            let (status, credentials): (PairingBook.Status, PairingDesk.Credentials?)
            switch result {
            case .success(let answer): (status, credentials) = answer
            case .failure(let error): return Self.pairingFailure(error, log: log)
            }
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
        })
    }

    /// The token of `Authorization: Bearer <token>` (scheme name in any case, RFC 9110 §11.1).
    static func bearerToken(_ request: HTTPRequest) -> String? {
        guard let authorization = request.headers["Authorization"], authorization.utf8.count > 7,
              authorization.prefix(7).lowercased() == "bearer " else { return nil }
        return String(authorization.dropFirst(7)).trimmingWhitespace()
    }

    /// `webhook-channel replay EVENT_ID` asks the running server to deliver a logged event again.
    private func replay(_ request: HTTPRequest, peer: SocketAddress?) -> HTTPReply {
        let given = Self.bearerToken(request) ?? ""
        guard peer?.isLoopback == true, ConstantTime.equals(Array(given.utf8), Array(controlToken.utf8)) else {
            return .now(.error(status: 403, code: "forbidden", message: "Control requests need the local control token."))
        }
        guard let eventID = fields(request, ["event_id"])?.strings["event_id"] else {
            return .now(.error(status: 400, code: "missing_event_id", message: "\"event_id\" must be a string."))
        }
        return .later(state.assumeIsolated { $0.replayEvent(id: eventID) }.map { outcome in
            switch outcome {
            case .unknownEvent:
                return .error(status: 404, code: "unknown_event", message: "No logged event has that id.")
            case .notReady:
                return Self.notReady
            case .backlog:
                return Self.backlog
            case .replayed:
                return .json(["replayed": true, "event_id": .string(eventID)])
            }
        })
    }

    /// A webhook's answer once its commit is known.
    static func response(to commit: ChannelState.Commit) -> HTTPResponse {
        switch commit {
        case .acknowledged(let eventID, let filtered): accepted(eventID: eventID, filtered: filtered)
        case .notWritten: notWritten
        case .sessionGone: sessionGone
        case .backlog: backlog
        case .notJournaled: notJournaled
        }
    }

    /// `{"received":true,"event_id":"evt_…"}` (and `"filtered":true`), written straight to
    /// bytes: the answer to nearly every request, and an event id is hex, never escaped.
    static func accepted(eventID: String, filtered: Bool) -> HTTPResponse {
        var body: [UInt8] = []
        body.reserveCapacity(64)
        body.appendLiteral(#"{"received":true,"event_id":"#)
        JSONWriter.appendString(eventID, into: &body)
        if filtered { body.appendLiteral(#","filtered":true"#) }
        body.append(UInt8(ascii: "}"))
        return .json(status: 200, body: body)
    }

    static let notReady = HTTPResponse.error(status: 503, code: "not_ready",
                                             message: "Claude Code has not connected yet; retry later.",
                                             headers: [("Retry-After", "5")])
    static let backlog = HTTPResponse.error(status: 503, code: "backlog",
                                            message: "Claude Code is not reading events fast enough; retry shortly.",
                                            headers: [("Retry-After", "1")])
    static let notWritten = HTTPResponse.error(status: 503, code: "storage_unavailable",
                                               message: "The event could not be written to the event log; retry later.",
                                               headers: [("Retry-After", "5")])

    static let notJournaled = HTTPResponse.error(status: 503, code: "storage_unavailable",
                                                 message: "The event could not be saved in the state dir; retry later.",
                                                 headers: [("Retry-After", "5")])

    static let sessionGone = HTTPResponse.error(status: 503, code: "session_closed",
                                                message: "Claude Code closed this session; retry later.",
                                                headers: [("Retry-After", "1")])

    private func webhook(_ request: HTTPRequest, pathSourceID: String?) -> HTTPReply {
        switch state.receiveWebhookOnLoopThread(pathSourceID: pathSourceID, headers: request.headers, body: request.body) {
        case .accepted(let written):
            // Answered at the end of the loop pass, once the event log holds the event.
            // One closure that fulfils the answer, not `written.map`: that is a closure
            // for the transform and another around it, one more allocation per webhook.
            // It holds the answer alone (the commit brings what the 200 names), so it
            // needs no context of its own either.
            let answer = Pending<HTTPResponse>()
            written.whenReady { [answer] commit in answer.fulfil(Self.response(to: commit)) }
            return .later(answer)
        case .verdict(.answered(let behavior)):
            return .now(.json(["received": true, "verdict": .string(behavior.rawValue)]))
        case .verdict(.unknownRequest):
            return .now(.error(status: 404, code: "unknown_request",
                               message: "No open permission request has that request_id (never sent, or already answered)."))
        case .verdict(.invalid(let reason)):
            return .now(.error(status: 400, code: "invalid_verdict", message: reason))
        case .duplicate:
            return .now(.json(["received": true, "duplicate": true]))
        case .journalBehind:
            return .now(Self.notJournaled)
        case .unauthorized:
            return .now(Self.unauthorized)
        case .invalidJSON:
            return .now(.error(status: 400, code: "invalid_json", message: "The body must be JSON."))
        case .challenge(let challenge):
            return .now(.json(["challenge": .string(challenge)]))
        case .notReady:
            return .now(Self.notReady)
        case .backlog:
            return .now(Self.backlog)
        }
    }
}
