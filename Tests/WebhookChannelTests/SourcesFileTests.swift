import Testing
@testable import WebhookChannel

struct SourcesFileTests {
    /// Exactly what the seed's `/webhook:pair` skill writes.
    static let seedFile = """
    {
      "sources": {
        "src_0123456789abcdef0123456789abcdef": {
          "name": "my-service",
          "hmac_secret": "whsec_00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
          "callback_url": null,
          "paired_at": "2026-03-01T10:00:00.000Z"
        }
      },
      "pending_pairings": {
        "A3KX9Z": {
          "name": "other",
          "callback_url": "https://example.com/hook",
          "created_at": "2026-03-01T10:01:00.000Z"
        }
      }
    }

    """

    @Test func seedWrittenFileLoadsUnchanged() throws {
        let file = try SourcesFile.decode(Array(Self.seedFile.utf8))
        #expect(file.sources.count == 1)
        let source = try #require(file.sources.first)
        #expect(source.name == "my-service")
        #expect(source.callbackURL == nil)
        #expect(source.scheme == .webhook)
        #expect(file.pending.first?.code == "A3KX9Z")
        #expect(String(decoding: file.encode(), as: UTF8.self) == Self.seedFile)
    }

    @Test func unknownFieldsSurviveARewrite() throws {
        let text = #"{"sources":{"src_a":{"name":"n","hmac_secret":"whsec_x","callback_url":null,"paired_at":"t","note":"keep"}},"pending_pairings":{},"future":[1]}"#
        let file = try SourcesFile.decode(Array(text.utf8))
        let again = try SourcesFile.decode(file.encode())
        #expect(again.sources.first?.extra["note"] == "keep")
        #expect(again.extra["future"] == [1])
    }

    @Test(arguments: ["{not json", "[]", #"{"sources":[]}"#, #"{"sources":{"src_a":{"name":"n"}}}"#])
    func malformedFilesAreRefused(_ text: String) {
        #expect(throws: SourcesFile.DecodeError.self) { try SourcesFile.decode(Array(text.utf8)) }
    }
}
