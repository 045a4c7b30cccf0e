import Testing
@testable import WebhookChannel

/// Settings from the environment (SPEC 2, README "Configuration"): a bad value is refused in
/// one line naming the variable, never read as a default; what the CLI prints as the URL.
struct ServerConfigTests {
    static let home = ["HOME": "/nonexistent"]

    @Test(arguments: [("1", true), ("true", true), ("YES", true), (" on ", true), ("0", false), ("false", false),
                      ("No", false), ("off", false), ("", false)])
    func fsyncTakesOnAndOffWords(value: String, on: Bool) throws {
        let config = try ServerConfig.fromEnvironment(Self.home.merging(["WEBHOOK_FSYNC": value]) { $1 })
        #expect(config.syncsEventLog == on, "WEBHOOK_FSYNC=\(value)")
    }

    @Test(arguments: ["WEBHOOK_FSYNC", "WEBHOOK_ALLOW_PRIVATE_CALLBACKS"], ["maybe", "2", "enabled"])
    func anOnOffSettingWithAnotherWordIsRefusedNamingTheVariable(variable: String, value: String) {
        do {
            _ = try ServerConfig.fromEnvironment(Self.home.merging([variable: value]) { $1 })
            Issue.record("\(variable)=\(value) was accepted")
        } catch {
            #expect(error.description.contains(variable), "\(error)")
            #expect(error.description.contains(value), "says what it got: \(error)")
            #expect(!error.description.contains("\n"), "one line: \(error)")
        }
    }

    /// Every whole-number setting reads the same way: digits, spaces around allowed, no sign.
    @Test(arguments: ["WEBHOOK_PORT", "WEBHOOK_MAX_CONNECTIONS", "WEBHOOK_BUSY_POLL_US"])
    func wholeNumberSettingsAllTakeSpacesAndRefuseASign(variable: String) throws {
        let spaced = try ServerConfig.fromEnvironment(Self.home.merging([variable: " 7 "]) { $1 })
        #expect(spaced.port == 7 || spaced.maxConnections == 7 || spaced.busyPollMicroseconds == 7, "\(variable)=' 7 '")
        for bad in ["+7", "-7", "7x", "", "0x7"] {
            #expect(throws: ServerConfig.Invalid.self, "\(variable)=\(bad)") {
                try ServerConfig.fromEnvironment(Self.home.merging([variable: bad]) { $1 })
            }
        }
    }

    @Test func unsetOnOffSettingsAreOff() throws {
        let config = try ServerConfig.fromEnvironment(Self.home)
        #expect(!config.syncsEventLog)
        #expect(!config.allowPrivateCallbacks)
    }

    @Test(arguments: [("127.0.0.1", "127.0.0.1"), ("localhost", "localhost"), ("::1", "[::1]"), ("[::1]", "[::1]"),
                      ("fe80::1%eth0", "[fe80::1%25eth0]"), ("2001:db8::5", "[2001:db8::5]")])
    func anIPv6LiteralIsBracketedInAURL(host: String, inURL: String) {
        #expect(ServerConfig.urlHost(host) == inURL)
    }

    @Test(arguments: ["abc", "70000", "-1", "", "80 80"])
    func theAddressRefusesABadPortNamingTheVariable(value: String) {
        do {
            _ = try ServerConfig.address(["WEBHOOK_PORT": value])
            Issue.record("WEBHOOK_PORT=\(value) was accepted")
        } catch {
            #expect(error.description.contains("WEBHOOK_PORT"), "\(error)")
        }
    }
}
