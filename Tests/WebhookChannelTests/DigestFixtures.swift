import Foundation
@testable import WebhookChannel

/// Real provider payloads under `Fixtures/`: GitHub's documented examples (octokit/webhooks,
/// `payload-examples/api.github.com`) and Stripe events built from the example objects in
/// stripe/openapi's `fixtures3.json` (see `Fixtures/README.md`).
enum DigestFixtures {
    /// The GitHub events SPEC 14 names, plus `star` for "any other event".
    static let githubEvents = [
        "push", "pull_request", "pull_request_review", "issues", "issue_comment", "workflow_run", "workflow_job",
        "check_run", "check_suite", "release", "deployment_status", "star",
    ]

    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func github(_ event: String) throws -> [UInt8] {
        Array(try Data(contentsOf: directory.appendingPathComponent("github/\(event).json")))
    }

    static func stripe(_ type: String) throws -> [UInt8] {
        Array(try Data(contentsOf: directory.appendingPathComponent("stripe/\(type).json")))
    }

    /// `payload=<json>` form-encoded as GitHub sends it to a hook whose content type is
    /// `application/x-www-form-urlencoded` (Ruby's `URI.encode_www_form`: `*-._` and
    /// alphanumerics as they are, a space as `+`, every other byte as `%XX`).
    static func githubForm(_ json: [UInt8]) -> [UInt8] {
        var out = Array("payload=".utf8)
        for byte in json {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "*"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"):
                out.append(byte)
            case UInt8(ascii: " "):
                out.append(UInt8(ascii: "+"))
            default:
                out += Array(String(format: "%%%02X", byte).utf8)
            }
        }
        return out
    }

    static let formContentType = "application/x-www-form-urlencoded"
}
