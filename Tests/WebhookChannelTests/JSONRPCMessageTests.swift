import Testing
@testable import JSON
@testable import MCP
@testable import WebhookChannel

struct JSONRPCMessageTests {
    private func decode(_ text: String) -> JSONRPCMessage { JSONRPCMessage.decode(Array(text.utf8)) }

    @Test func classifiesRequestsNotificationsAndResponses() {
        #expect(decode(#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#) == .request(id: 1, method: "ping", params: nil))
        #expect(decode(#"{"jsonrpc":"2.0","id":"a","method":"x","params":{}}"#)
            == .request(id: "a", method: "x", params: .object(JSONObject())))
        #expect(decode(#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
            == .notification(method: "notifications/initialized", params: nil))
        #expect(decode(#"{"jsonrpc":"2.0","id":7,"result":{}}"#) == .response(id: 7))
    }

    @Test func malformedJSONIsAParseErrorWithNullID() {
        guard case .invalid(let id, let error) = decode("{nope") else { Issue.record("expected invalid"); return }
        #expect(id == .null)
        #expect(error.code == -32700)
    }

    @Test(arguments: ["42", "\"x\"", "[]", #"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#, "null"])
    func nonObjectsAreInvalidRequestsWithNullID(_ text: String) {
        guard case .invalid(let id, let error) = decode(text) else { Issue.record("expected invalid"); return }
        #expect(id == .null)
        #expect(error.code == -32600)
    }

    @Test(arguments: [#"{"a":1}"#, #"[1]"#, "true", "null", "1.5", "1E400", "9223372036854775808", "123456789012345678901234567890"])
    func badIDTypesAreInvalidRequestsWithNullID(_ idText: String) {
        guard case .invalid(let id, let error) = decode(#"{"jsonrpc":"2.0","id":\#(idText),"method":"ping"}"#) else {
            Issue.record("expected invalid"); return
        }
        #expect(id == .null)
        #expect(error.code == -32600)
    }

    @Test func requestWithoutMethodKeepsItsID() {
        guard case .invalid(let id, let error) = decode(#"{"jsonrpc":"2.0","id":3}"#) else { Issue.record("expected invalid"); return }
        #expect(id == 3)
        #expect(error.code == -32600)
    }

    @Test func wrongVersionIsInvalid() {
        guard case .invalid(_, let error) = decode(#"{"jsonrpc":"1.0","id":3,"method":"ping"}"#) else {
            Issue.record("expected invalid"); return
        }
        #expect(error.code == -32600)
    }

    @Test func errorsEncodeAsOneLine() {
        let line = JSONRPCMessage.encodeError(id: .null, error: .methodNotFound("server/discover"))
        #expect(String(decoding: line, as: UTF8.self)
            == #"{"jsonrpc":"2.0","id":null,"error":{"code":-32601,"message":"Method not found: server/discover"}}"#)
    }
}
