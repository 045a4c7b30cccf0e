import Foundation

/// Certificates for https callback tests, made at test time with the `openssl` CLI into a
/// directory of the test's own (P-256 keys: the whole set takes about 0.15 s):
///
/// - `ca`: a test CA; a server started with `SSL_CERT_FILE` = `ca.certificate` trusts it
///   (libssl's `SSL_CTX_set_default_verify_paths` reads that variable) and nothing else.
/// - `trusted`: signed by `ca`, valid for `IP:127.0.0.1` and `DNS:localhost`.
/// - `otherHost`: signed by `ca`, valid only for `DNS:callback.example`.
/// - `selfSigned`: valid for `IP:127.0.0.1` and `DNS:localhost`, but signed by itself.
/// - `unrelatedCA`: a second CA that signed none of the above.
struct TestCertificates: Sendable {
    struct Pair: Sendable {
        let certificate: URL
        let key: URL
    }

    let ca: Pair
    let trusted: Pair
    let otherHost: Pair
    let selfSigned: Pair
    let unrelatedCA: Pair

    /// Writes the set into `directory` (created if needed). The `openssl` runs are child
    /// processes awaited by polling, never a blocking wait.
    static func make(in directory: URL, timeout: Duration = .seconds(60)) async throws -> TestCertificates {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        // An explicit config, so the extensions do not depend on the machine's openssl.cnf.
        let config = """
            [req]
            distinguished_name = dn
            prompt = no
            [dn]
            CN = placeholder
            [ca]
            basicConstraints = critical, CA:TRUE
            keyUsage = critical, keyCertSign, cRLSign
            subjectKeyIdentifier = hash
            [loopback]
            basicConstraints = critical, CA:FALSE
            keyUsage = critical, digitalSignature
            extendedKeyUsage = serverAuth
            subjectAltName = IP:127.0.0.1, DNS:localhost
            [other_host]
            basicConstraints = critical, CA:FALSE
            keyUsage = critical, digitalSignature
            extendedKeyUsage = serverAuth
            subjectAltName = DNS:callback.example

            """
        try Data(config.utf8).write(to: directory.appendingPathComponent("openssl.cnf"))
        let script = """
            command -v openssl >/dev/null || { echo "the openssl command is not installed" >&2; exit 127; }
            key="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
            root() { openssl req -x509 -config openssl.cnf $key -days 2 -keyout "$1.key" -out "$1.pem" -subj "$2" -extensions "$3"; }
            leaf() {
              openssl req -new -config openssl.cnf $key -keyout "$1.key" -out "$1.csr" -subj "$2"
              openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -set_serial "$3" -days 2 \\
                -extfile openssl.cnf -extensions "$4" -out "$1.pem"
            }
            root ca "/CN=webhook-e2e test CA" ca
            root unrelated-ca "/CN=webhook-e2e unrelated CA" ca
            leaf trusted "/CN=localhost" 2 loopback
            leaf other-host "/CN=callback.example" 3 other_host
            root self-signed "/CN=localhost" loopback
            """
        let openssl = try ChildProcess(
            executable: URL(fileURLWithPath: "/bin/sh"),
            arguments: ["-ec", "cd \"$0\"\n" + script, directory.path],
            environment: ProcessInfo.processInfo.environment)
        defer { openssl.kill() }
        let termination = try await openssl.waitForExit(timeout: timeout)
        guard termination == .exited(0) else {
            throw HarnessError("making test certificates with openssl failed (\(termination)):\n\(openssl.stderr.tail())")
        }
        func pair(_ name: String) -> Pair {
            Pair(certificate: directory.appendingPathComponent("\(name).pem"),
                 key: directory.appendingPathComponent("\(name).key"))
        }
        return TestCertificates(ca: pair("ca"), trusted: pair("trusted"), otherHost: pair("other-host"),
                                selfSigned: pair("self-signed"), unrelatedCA: pair("unrelated-ca"))
    }
}
