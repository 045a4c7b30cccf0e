import Foundation

/// A private temporary directory for one test: `root` is created at once; `path` (the
/// `WEBHOOK_STATE_DIR`) is a child that is NOT created, so the product has to create it —
/// that is how the tests see the mode the product gives it. Call `createStateDir()` first
/// when a test pre-writes `sources.json`. `remove()` (idempotent) deletes everything.
final class TempStateDir: @unchecked Sendable {
    let root: URL
    let url: URL
    private let lock = NSLock()
    private var removed = false

    var path: String { url.path }
    var sourcesFile: URL { url.appendingPathComponent("sources.json") }
    var serverFile: URL { url.appendingPathComponent("server.json") }

    /// `stateName`: the state dir's own name under the root (a long one makes a long path).
    init(stateName: String = "state") throws {
        var template = Array("/tmp/webhook-e2e.XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buffer in
            mkdtemp(buffer.baseAddress!)
        }
        guard made != nil else {
            throw HarnessError("mkdtemp failed: \(String(cString: strerror(errno)))")
        }
        let rootPath = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        root = URL(fileURLWithPath: rootPath, isDirectory: true)
        url = root.appendingPathComponent(stateName, isDirectory: true)
    }

    deinit { remove() }

    /// Creates the state directory with mode 0700, as the product would.
    func createStateDir() throws {
        try FileManager.default.createDirectory(
            at: url, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }

    /// Writes `sources.json` atomically (temp file + rename in the same directory), the way
    /// another process would, with mode 0600.
    func writeSourcesFile(_ text: String) throws {
        try writeAtomically(text, to: sourcesFile)
    }

    func writeAtomically(_ text: String, to destination: URL) throws {
        try createStateDir()
        let temp = url.appendingPathComponent(".e2e-\(UUID().uuidString).tmp")
        guard FileManager.default.createFile(
            atPath: temp.path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600])
        else {
            throw HarnessError("could not write \(temp.path)")
        }
        guard rename(temp.path, destination.path) == 0 else {
            throw HarnessError("rename to \(destination.path) failed: \(String(cString: strerror(errno)))")
        }
    }

    func readSourcesFile() throws -> String {
        try String(contentsOf: sourcesFile, encoding: .utf8)
    }

    /// The permission bits (`st_mode & 0o7777`) of a path, or nil when it does not exist.
    func mode(of path: String) -> Int? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return Int(info.st_mode & 0o7777)
    }

    /// Names in the state directory (empty when it does not exist).
    func entries() -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: path))?.sorted() ?? []
    }

    func remove() {
        lock.lock()
        defer { lock.unlock() }
        guard !removed else { return }
        removed = true
        try? FileManager.default.removeItem(at: root)
    }
}
