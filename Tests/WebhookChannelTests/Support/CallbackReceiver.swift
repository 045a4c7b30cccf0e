import Foundation

/// A tiny HTTP server on `127.0.0.1:0` standing in for a sender's `callback_url`. Each answer
/// is scripted (status and extra header fields, such as a redirect's `Location`); the last one
/// repeats. One request per connection; every request is recorded with the time it arrived.
/// Runs on its own thread; `stop()` (idempotent, also in `deinit`) closes it.
final class CallbackReceiver: @unchecked Sendable {
    struct Delivery: Sendable {
        let request: ReceivedRequest
        let arrivedAt: ContinuousClock.Instant
    }

    struct Answer: Sendable {
        var status: Int
        var headers: [(String, String)] = []
        var body: String = #"{"ok":true}"#
    }

    var port: Int { listener.port }
    private let listener: LoopbackListener
    private let answers: [Answer]
    private let lock = NSLock()
    private var recorded: [Delivery] = []

    /// Answers with these statuses in turn.
    convenience init(statuses: [Int] = [200]) throws {
        try self.init(statuses.map { Answer(status: $0) })
    }

    init(_ answers: [Answer]) throws {
        precondition(!answers.isEmpty)
        self.answers = answers
        listener = try LoopbackListener()
        let thread = Thread { [self] in listener.acceptUntilStopped(answer) }
        thread.name = "e2e-scripted-receiver"
        thread.start()
    }

    deinit { stop() }

    func url(path: String = "/callback") -> String { "http://127.0.0.1:\(port)\(path)" }

    var deliveries: [Delivery] { lock.withLock { recorded } }

    func waitForDeliveries(_ count: Int, timeout: Duration = defaultTimeout) async throws -> [Delivery] {
        try await poll(timeout: timeout, "\(count) request(s) at the scripted receiver (got \(deliveries.count))") {
            let all = deliveries
            return all.count >= count ? all : nil
        }
    }

    func stop() {
        listener.stop()
    }

    /// On the receiver's thread: records one request and sends the next scripted answer.
    /// The product sends its request at once; the limits only stop a stuck peer from holding
    /// the thread, and are generous so a receiver thread kept off the CPU on a loaded machine
    /// does not drop a request (which the product would see as a failed attempt).
    private func answer(_ fd: Int32) {
        let connection = HTTPConnection(fd: fd)
        defer { connection.close() }
        guard let request = try? connection.readRequestBlocking(timeout: Duration.seconds(30)) else { return }
        let index = lock.withLock {
            recorded.append(Delivery(request: request, arrivedAt: .now))
            return recorded.count - 1
        }
        let answer = answers[min(index, answers.count - 1)]
        var head = "HTTP/1.1 \(answer.status) Scripted\r\nContent-Type: application/json\r\n"
        for (name, value) in answer.headers { head += "\(name): \(value)\r\n" }
        head += "Content-Length: \(answer.body.utf8.count)\r\nConnection: close\r\n\r\n"
        try? connection.sendBlocking(Data((head + answer.body).utf8), timeout: Duration.seconds(30))
    }
}

/// The name the provider tests use for a receiver with scripted answers.
typealias ScriptedReceiver = CallbackReceiver

/// A listening socket on `127.0.0.1` with a port the kernel picked; close-on-exec, so no
/// spawned child inherits it. Shared by the test receivers (`CallbackReceiver`, `TLSFront`).
func listenOnLoopback(backlog: Int32 = 16) throws -> (fd: Int32, port: Int) {
    try bindOnLoopback(listening: backlog)
}

/// A socket bound to `127.0.0.1` and a port the kernel picks; listening with `backlog` when
/// given (with SO_REUSEADDR), else bound only: a port held closed, which refuses connections.
func bindOnLoopback(listening backlog: Int32?) throws -> (fd: Int32, port: Int) {
    let fd = TestSocket.makeIPv4()
    guard fd >= 0 else { throw HarnessError("socket() failed: \(String(cString: strerror(errno)))") }
    if backlog != nil {
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
    }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
            bind(fd, pointer, length) == 0 && (backlog.map { listen(fd, $0) == 0 } ?? true)
                && getsockname(fd, pointer, &length) == 0
        }
    }
    guard bound else {
        let reason = String(cString: strerror(errno))
        Foundation.close(fd)
        throw HarnessError(backlog == nil ? "could not bind a closed port: \(reason)" : "test receiver could not listen: \(reason)")
    }
    return (fd, Int(UInt16(bigEndian: address.sin_port)))
}

/// A listening socket on `127.0.0.1` that its owner's thread accepts from until `stop()`.
/// Shared by the test receivers (`CallbackReceiver`, `TLSFront`).
final class LoopbackListener: @unchecked Sendable {
    let port: Int
    private let fd: Int32
    private let lock = NSLock()
    private var stopped = false

    init() throws {
        (fd, port) = try listenOnLoopback()
    }

    var isStopped: Bool { lock.withLock { stopped } }

    func stop() {
        lock.withLock {
            guard !stopped else { return }
            stopped = true
            shutdown(fd, Int32(SHUT_RDWR))
        }
    }

    /// On the calling thread: hands each accepted connection to `serve` (which closes it),
    /// one at a time, until `stop()`; then closes the listening socket. Polls, so a stop is
    /// noticed within 100 ms.
    func acceptUntilStopped(_ serve: (Int32) -> Void) {
        defer { Foundation.close(fd) }
        while !isStopped {
            var ready = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard Foundation.poll(&ready, 1, 100) > 0, !isStopped else { continue }
            let connection = acceptCloseOnExec(fd)
            guard connection >= 0 else { continue }
            serve(connection)
        }
    }
}

/// `accept()` with `FD_CLOEXEC` set under `ChildProcess.spawnLock` (`accept4` is not exported
/// by the Glibc module), so a child spawned meanwhile never inherits the connection.
func acceptCloseOnExec(_ listener: Int32) -> Int32 {
    ChildProcess.spawnLock.withLock {
        let fd = accept(listener, nil, nil)
        if fd >= 0 { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return fd
    }
}
