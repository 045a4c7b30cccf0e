import Testing
@testable import WebhookChannel

/// `SourceAdmin.rotate` and the secrets a source accepts (SPEC 7 "old secret still accepted
/// for 24 h"), on the injected time: each replaced secret is accepted until its own end,
/// however many rotations follow within it.
struct SecretRotationTests {
    static let day = SourceAdmin.rotationGrace
    static let t0 = 1_800_000_000.0

    static func file(secret: String = "A") -> SourcesFile {
        var file = SourcesFile()
        file.sources = [SourceRecord(id: "src_a", name: "a", hmacSecret: secret, callbackURL: nil, pairedAt: "2027-01-15T08:00:00.000Z",
                                     scheme: .github)]
        return file
    }

    static func accepted(_ file: SourcesFile, at now: Double) -> [String] {
        file.sources[0].acceptedSecrets(now: now)
    }

    @Test func eachReplacedSecretIsAcceptedUntilItsOwnExpiry() throws {
        var file = Self.file()
        _ = try SourceAdmin.rotate(&file, id: "src_a", now: Self.t0, newSecret: "B")
        let second = try SourceAdmin.rotate(&file, id: "src_a", now: Self.t0 + 3600, newSecret: "C")

        #expect(second.source.previousExpiresAt == ISOTime.format(Self.t0 + 3600 + Self.day))
        #expect(second.source.earlierSecrets == [RetiredSecret(secret: "A", expiresAt: ISOTime.format(Self.t0 + Self.day))])
        #expect(second.droppedEarly.isEmpty)
        #expect(Self.accepted(file, at: Self.t0 + 3601) == ["C", "B", "A"])
        #expect(Self.accepted(file, at: Self.t0 + Self.day - 1) == ["C", "B", "A"])
        #expect(Self.accepted(file, at: Self.t0 + Self.day) == ["C", "B"], "A's day is over")
        #expect(Self.accepted(file, at: Self.t0 + 3600 + Self.day) == ["C"], "B's day is over")
    }

    @Test func aRotationForgetsReplacedSecretsWhoseGraceHasEnded() throws {
        var file = Self.file()
        _ = try SourceAdmin.rotate(&file, id: "src_a", now: Self.t0, newSecret: "B")
        _ = try SourceAdmin.rotate(&file, id: "src_a", now: Self.t0 + 10, newSecret: "C")

        let late = try SourceAdmin.rotate(&file, id: "src_a", now: Self.t0 + Self.day + 20, newSecret: "D")

        #expect(late.source.previousSecret == "C")
        #expect(late.source.earlierSecrets.isEmpty, "A and B had expired: \(late.source.earlierSecrets)")
        #expect(late.droppedEarly.isEmpty, "an expired secret did not end early")
        #expect(Self.accepted(file, at: Self.t0 + Self.day + 21) == ["D", "C"])
    }

    @Test func atMostEightReplacedSecretsAreKeptTheOldestEndingEarlyAndSaidSo() throws {
        var file = Self.file(secret: "s0")
        var last: SourceAdmin.Rotation?
        for n in 1...9 {
            last = try SourceAdmin.rotate(&file, id: "src_a", now: Self.t0 + Double(n), newSecret: "s\(n)")
        }
        let rotation = try #require(last)

        #expect(Self.accepted(file, at: Self.t0 + 10) == ["s9", "s8", "s7", "s6", "s5", "s4", "s3", "s2", "s1"])
        #expect(rotation.droppedEarly == [RetiredSecret(secret: "s0", expiresAt: ISOTime.format(Self.t0 + 1 + Self.day))])
    }

    @Test func aFileFromBeforeEarlierSecretsKeepsItsPreviousSecretsExpiryThroughAnotherRotation() throws {
        let expiry = ISOTime.format(Self.t0 + 600)
        let text = """
        {"sources":{"src_a":{"name":"a","hmac_secret":"B","callback_url":null,"paired_at":"t","scheme":"github",
        "previous_secret":"A","previous_expires_at":"\(expiry)"}},"pending_pairings":{}}
        """
        var file = try SourcesFile.decode(Array(text.utf8))
        #expect(Self.accepted(file, at: Self.t0) == ["B", "A"])

        _ = try SourceAdmin.rotate(&file, id: "src_a", now: Self.t0, newSecret: "C")
        let again = try SourcesFile.decode(file.encode())

        #expect(again == file, "round trip")
        #expect(again.sources[0].earlierSecrets == [RetiredSecret(secret: "A", expiresAt: expiry)])
        #expect(Self.accepted(again, at: Self.t0 + 599) == ["C", "B", "A"])
        #expect(Self.accepted(again, at: Self.t0 + 600) == ["C", "B"])
    }

    @Test func earlierSecretsAreStoredBesideThePreviousSecretFieldsAnOlderVersionReads() throws {
        var file = Self.file()
        _ = try SourceAdmin.rotate(&file, id: "src_a", now: Self.t0, newSecret: "B")
        _ = try SourceAdmin.rotate(&file, id: "src_a", now: Self.t0 + 5, newSecret: "C")

        let text = String(decoding: file.encode(), as: UTF8.self)

        #expect(text.contains(#""previous_secret": "B""#), "\(text)")
        #expect(text.contains(#""previous_expires_at": "\#(ISOTime.format(Self.t0 + 5 + Self.day))""#), "\(text)")
        #expect(text.contains(#""earlier_secrets": ["#), "\(text)")
        #expect(text.contains(#""secret": "A""#), "\(text)")
    }

    @Test func anEarlierSecretWithoutAnExpiryIsNeverAccepted() throws {
        let text = """
        {"sources":{"src_a":{"name":"a","hmac_secret":"B","callback_url":null,"paired_at":"t",
        "earlier_secrets":[{"secret":"X"},{"secret":"Y","expires_at":"soon"},"Z",{"secret":"W","expires_at":"\(ISOTime.format(Self.t0 + 60))"}]}},
        "pending_pairings":{}}
        """
        let file = try SourcesFile.decode(Array(text.utf8))

        #expect(Self.accepted(file, at: Self.t0) == ["B", "W"])
    }
}
