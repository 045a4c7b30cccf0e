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
}
