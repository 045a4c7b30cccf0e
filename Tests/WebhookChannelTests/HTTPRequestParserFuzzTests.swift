import Testing
@testable import HTTP
@testable import WebhookChannel

// Property tests for HTTPRequestParser with a seeded, deterministic generator. Every
// iteration derives its own seed and every failure message names it; to reproduce one,
// call `checkValidRequest(seed:)` or `checkMutatedRequest(seed:)` with that seed.
// Bounded to a few seconds in debug builds.

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast and good enough for test inputs.
struct SplitMix64 {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A value in `0..<bound` (bound > 0); the modulo bias is irrelevant here.
    mutating func below(_ bound: Int) -> Int {
        Int(next() % UInt64(bound))
    }

    mutating func inRange(_ range: ClosedRange<Int>) -> Int {
        range.lowerBound + below(range.count)
    }

    /// True with probability `percent` / 100.
    mutating func chance(_ percent: Int) -> Bool {
        below(100) < percent
    }

    mutating func pick<T>(_ items: [T]) -> T {
        items[below(items.count)]
    }

    mutating func byte() -> UInt8 {
        UInt8(truncatingIfNeeded: next())
    }
}

/// A valid request on the wire together with what the parser must make of it.
private struct GeneratedRequest {
    var wire: [UInt8] = []
    /// Index just after the head's empty line.
    var headLength = 0
    var method = ""
    var target = ""
    var version = HTTPVersion.http11
    var headers: [(String, String)] = []
    var body: [UInt8] = []
}

private enum Generator {
    static let tokenBytes = Array("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)
    static let methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    static let commonNames = ["Content-Type", "X-Signature", "User-Agent", "Accept", "X-Source-Id", "Connection", "Expect", "Origin"]
    static let framingNames = ["host", "content-length", "transfer-encoding"]
    static let multiByte = ["\u{E9}", "\u{65E5}", "\u{1F600}", "\u{FC}"]

    static func token(_ rng: inout SplitMix64, maxLength: Int) -> String {
        let length = rng.inRange(1...maxLength)
        var bytes: [UInt8] = []
        for _ in 0..<length { bytes.append(rng.pick(tokenBytes)) }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func randomCase(_ text: String, _ rng: inout SplitMix64) -> String {
        guard rng.chance(30) else { return text }
        return String(text.map { rng.chance(50) ? Character($0.uppercased()) : Character($0.lowercased()) })
    }

    static func ows(_ rng: inout SplitMix64) -> String {
        guard rng.chance(30) else { return rng.chance(50) ? " " : "" }
        var text = ""
        for _ in 0..<rng.inRange(1...3) { text += rng.chance(50) ? " " : "\t" }
        return text
    }

    /// A field value with no leading or trailing whitespace (the parser trims it).
    static func fieldValue(_ rng: inout SplitMix64) -> String {
        var text = ""
        for _ in 0..<rng.inRange(0...30) {
            switch rng.below(20) {
            case 0: text += " "
            case 1: text += "\t"
            case 2: text += rng.pick(multiByte)
            default: text.unicodeScalars.append(Unicode.Scalar(UInt8(rng.inRange(0x21...0x7E))))
            }
        }
        while let last = text.last, last == " " || last == "\t" { text.removeLast() }
        while let first = text.first, first == " " || first == "\t" { text.removeFirst() }
        return text
    }

    static func target(_ rng: inout SplitMix64) -> String {
        if rng.chance(3) { return "*" }
        var text = "/"
        for _ in 0..<rng.inRange(0...30) {
            text.unicodeScalars.append(Unicode.Scalar(UInt8(rng.inRange(0x21...0x7E))))
        }
        return text
    }

    static func hex(_ value: Int, _ rng: inout SplitMix64) -> String {
        var text = String(value, radix: 16, uppercase: rng.chance(50))
        if rng.chance(10) { text = String(repeating: "0", count: rng.inRange(1...3)) + text }
        return text
    }

    static func chunkExtension(_ rng: inout SplitMix64) -> String {
        switch rng.below(6) {
        case 0: return ";" + token(&rng, maxLength: 6)
        case 1: return ";" + token(&rng, maxLength: 6) + "=" + token(&rng, maxLength: 6)
        case 2: return " ; a=\"q v\""
        default: return ""
        }
    }

    static func request(_ rng: inout SplitMix64) -> GeneratedRequest {
        var generated = GeneratedRequest()
        generated.method = rng.chance(85) ? rng.pick(methods) : token(&rng, maxLength: 8)
        generated.target = target(&rng)
        generated.version = rng.chance(85) ? .http11 : .http10
        let chunked = generated.version == .http11 && rng.chance(40)
        let needsLength = ["POST", "PUT", "PATCH"].contains(generated.method)

        // Ordinary fields, then Host and the framing field at random positions.
        var fields: [(name: String, wireValue: String, value: String)] = []
        for _ in 0..<rng.inRange(0...8) {
            var name = rng.chance(40) ? rng.pick(commonNames) : token(&rng, maxLength: 12)
            if framingNames.contains(name.lowercased()) { name = "X-" + name }
            let value = fieldValue(&rng)
            fields.append((randomCase(name, &rng), ows(&rng) + value + ows(&rng), value))
        }
        if generated.version == .http11 || rng.chance(50) {
            let host = rng.pick(["localhost:8788", "127.0.0.1", "[::1]:9", "example.com"])
            fields.insert((randomCase("Host", &rng), ows(&rng) + host + ows(&rng), host), at: rng.below(fields.count + 1))
        }

        let bodyLength = rng.chance(30) ? 0 : rng.inRange(0...200)
        for _ in 0..<bodyLength { generated.body.append(rng.byte()) }
        if !chunked && !needsLength && rng.chance(40) {
            generated.body = []
        }

        var bodyWire: [UInt8] = []
        if chunked {
            let coding = randomCase("chunked", &rng)
            fields.insert(
                (randomCase("Transfer-Encoding", &rng), ows(&rng) + coding + ows(&rng), coding),
                at: rng.below(fields.count + 1))
            var offset = 0
            while offset < generated.body.count {
                let size = min(generated.body.count - offset, rng.inRange(1...64))
                bodyWire += Array((hex(size, &rng) + chunkExtension(&rng) + "\r\n").utf8)
                bodyWire += generated.body[offset..<(offset + size)]
                bodyWire += [0x0D, 0x0A]
                offset += size
            }
            bodyWire += Array(("0" + chunkExtension(&rng) + "\r\n").utf8)
            for _ in 0..<(rng.chance(20) ? rng.inRange(1...3) : 0) {
                bodyWire += Array((token(&rng, maxLength: 8) + ":" + ows(&rng) + fieldValue(&rng) + "\r\n").utf8)
            }
            bodyWire += [0x0D, 0x0A]
        } else if !generated.body.isEmpty || needsLength || rng.chance(20) {
            let length = String(generated.body.count)
            let value = rng.chance(10) ? length + "," + ows(&rng) + length : length
            let name = randomCase("Content-Length", &rng)
            let position = rng.below(fields.count + 1)
            fields.insert((name, ows(&rng) + value + ows(&rng), value), at: position)
            if rng.chance(5) {
                fields.insert((name, length, length), at: rng.below(fields.count + 1))
            }
            bodyWire = generated.body
        } else {
            generated.body = []
        }

        var head = rng.chance(5) ? "\r\n" : ""
        head += "\(generated.method) \(generated.target) \(generated.version)\r\n"
        for field in fields {
            head += "\(field.name):\(field.wireValue)\r\n"
        }
        head += "\r\n"
        generated.headers = fields.map { ($0.name, $0.value) }
        generated.wire = Array(head.utf8)
        generated.headLength = generated.wire.count
        generated.wire += bodyWire
        return generated
    }

    /// Damages a request the way a broken or hostile client might.
    static func mutate(_ input: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
        var bytes = input
        for _ in 0..<rng.inRange(1...4) {
            let position = rng.below(bytes.count + 1)
            switch rng.below(9) {
            case 0 where position < bytes.count:
                bytes[position] ^= UInt8(1) << UInt8(rng.below(8))
            case 1 where position < bytes.count:
                bytes[position] = rng.byte()
            case 2:
                bytes.insert(rng.pick([0x0D, 0x0A, 0x00, 0x20, 0x09, UInt8(ascii: ":"), UInt8(ascii: ";"), 0x7F, 0xFF]), at: position)
            case 3 where position < bytes.count:
                bytes.remove(at: position)
            case 4:
                bytes.removeSubrange(position...)
            case 5:
                // A run long enough to cross any limit.
                let run = [UInt8](repeating: rng.pick(Array("a0f; :\r\n".utf8)), count: rng.inRange(1...10_000))
                bytes.insert(contentsOf: run, at: position)
            case 6:
                let end = min(bytes.count, position + rng.inRange(1...40))
                let segment = Array(bytes[position..<end])
                for _ in 0..<rng.inRange(1...200) { bytes.insert(contentsOf: segment, at: position) }
            case 7:
                bytes.insert(contentsOf: [0x0D, 0x0A], at: position)
            default:
                bytes.insert(rng.byte(), at: position)
            }
        }
        return bytes
    }
}

/// The request without its framing headers, which `serialized()` rewrites.
private func withoutFraming(_ request: HTTPRequest) -> HTTPRequest {
    var headers = HTTPHeaders()
    for (name, value) in request.headers
    where !HTTPHeaders.namesEqual(name, "Content-Length") && !HTTPHeaders.namesEqual(name, "Transfer-Encoding") {
        headers.append(name: name, value: value)
    }
    return HTTPRequest(method: request.method, target: request.target, version: request.version, headers: headers, body: request.body)
}

private let smallLimits = HTTPLimits(maxRequestLineBytes: 64, maxHeaderBytes: 256, maxHeaderCount: 8, maxBodyBytes: 128)

private let knownFailures: [Int: Set<String>] = [
    400: ["bad_request"], 411: ["length_required"], 413: ["payload_too_large"], 414: ["uri_too_long"],
    431: ["headers_too_large"], 501: ["not_implemented"], 505: ["version_not_supported"],
]

/// Checks what must hold for any input; returns a description of the first violation.
private func invariantViolation(_ input: [UInt8], limits: HTTPLimits) -> String? {
    let result = HTTPRequestParser.parse(input, limits: limits)
    switch result {
    case .complete(let request, let consumed):
        if consumed <= 0 || consumed > input.count { return "consumed \(consumed) of \(input.count) bytes" }
        if request.body.count > limits.maxBodyBytes { return "body of \(request.body.count) bytes over the limit" }
        if request.headers.count > limits.maxHeaderCount { return "\(request.headers.count) headers over the limit" }
        // Whatever follows a complete request must not change it (pipelining).
        let exact = HTTPRequestParser.parse(Array(input[..<consumed]), limits: limits)
        if exact != result { return "the request alone parses differently: \(exact)" }
    case .needMore(let progress):
        if input.count > limits.maxRequestBytes {
            return "needMore for \(input.count) bytes, over maxRequestBytes \(limits.maxRequestBytes)"
        }
        if let head = progress.head, let length = head.contentLength, length > limits.maxBodyBytes {
            return "head with Content-Length \(length) over the limit"
        }
    case .failure(let error):
        guard let codes = knownFailures[error.status], codes.contains(error.code) else {
            return "unexpected failure \(error.status) \(error.code)"
        }
        if error.message.isEmpty { return "empty message" }
    }
    return nil
}

/// A decision made on a prefix must stand: a failure on a prefix is the same failure on
/// the whole input, and a complete request on a prefix is the same request.
private func prefixViolation(_ input: [UInt8], cut: Int, limits: HTTPLimits) -> String? {
    let partial = HTTPRequestParser.parse(Array(input[..<cut]), limits: limits)
    switch partial {
    case .needMore:
        return nil
    case .failure, .complete:
        let whole = HTTPRequestParser.parse(input, limits: limits)
        return whole == partial ? nil : "prefix of \(cut) bytes gave \(partial) but the whole input gave \(whole)"
    }
}

/// What a connection makes of `input` when it arrives in pieces of `pieceSizes` bytes (once
/// they run out, the rest in one piece): every complete request or failure in order, then the
/// `needMore` it is left waiting with, if any. Like `HTTPServerConnection`, the parser is
/// handed its progress back on each piece and starts afresh after a complete request.
/// `examined` adds up the bytes the parser looked at and `calls` the calls it took.
private func connectionResults(
    _ input: [UInt8], pieceSizes: [Int], limits: HTTPLimits, examined: inout Int, calls: inout Int
) -> [HTTPParseResult] {
    var results: [HTTPParseResult] = []
    var buffer: [UInt8] = []
    var progress: HTTPParseProgress?
    var offset = 0
    var piece = 0
    while offset < input.count {
        let size = piece < pieceSizes.count ? max(1, pieceSizes[piece]) : input.count - offset
        piece += 1
        buffer += input[offset..<min(input.count, offset + size)]
        offset += size
        reading: while !buffer.isEmpty {
            calls += 1
            let result = buffer.withUnsafeBytes {
                HTTPRequestParser.parse($0, limits: limits, resuming: progress, examined: &examined)
            }
            switch result {
            case .needMore(let next):
                progress = next
                break reading
            case .complete(_, let consumed):
                results.append(result)
                buffer.removeFirst(consumed)
                progress = nil
            case .failure:
                results.append(result)
                return results
            }
        }
    }
    if let progress, !buffer.isEmpty { results.append(.needMore(progress)) }
    return results
}

/// Ways to cut an input into reads: byte by byte (for inputs short enough to keep the test
/// fast), small or large random pieces, one cut.
private func randomPieceSizes(for count: Int, _ rng: inout SplitMix64) -> [Int] {
    var sizes: [Int] = []
    var total = 0
    let mode = count > 2000 ? 1 + rng.below(3) : rng.below(4)
    while total < count {
        let size: Int
        switch mode {
        case 0: size = 1
        case 1: size = rng.inRange(1...16)
        case 2: size = rng.inRange(1...max(1, count / 3))
        default: size = total == 0 ? rng.inRange(1...max(1, count)) : count
        }
        sizes.append(size)
        total += size
    }
    return sizes
}

struct HTTPRequestParserFuzzTests {
    static let iterations = 20_000

    /// The loops below run for seconds (every `needMore` the parser throws has the test
    /// library capture a backtrace), on one of the test run's cooperative threads, of which
    /// a 2-core machine has two: they yield every 64 iterations, or two of them would hold
    /// both threads and stall every other test for 10–25 s (a server's 10 s head timeout
    /// then ran out between a test's connect and its send).
    static func yieldNow(_ iteration: Int) async {
        if iteration % 64 == 63 { await Task.yield() }
    }

    @Test func generatedValidRequestsParseAndSurviveReserialization() async {
        var issues = 0
        for iteration in 0..<Self.iterations where issues < 5 {
            await Self.yieldNow(iteration)
            let seed = 0xC0FFEE &+ UInt64(iteration) &* 0x9E37_79B9
            if let problem = checkValidRequest(seed: seed) {
                Issue.record("seed \(seed): \(problem)")
                issues += 1
            }
        }
    }

    private func checkValidRequest(seed: UInt64) -> String? {
        var rng = SplitMix64(seed: seed)
        let generated = Generator.request(&rng)
        let wireText = String(decoding: generated.wire.prefix(300), as: UTF8.self).debugDescription
        guard case .complete(let request, let consumed) = HTTPRequestParser.parse(generated.wire, limits: .standard) else {
            return "valid request did not parse: \(HTTPRequestParser.parse(generated.wire, limits: .standard)) for \(wireText)"
        }
        if consumed != generated.wire.count { return "consumed \(consumed) of \(generated.wire.count)" }
        if request.method != generated.method || request.target != generated.target || request.version != generated.version {
            return "request line differs for \(wireText)"
        }
        if request.headers != HTTPHeaders(generated.headers) {
            return "headers \(Array(request.headers)) differ from \(generated.headers)"
        }
        if request.body != generated.body { return "body differs for \(wireText)" }

        // Round trip through serialized(): equal except for the rewritten framing headers,
        // and from then on a fixed point.
        guard case .complete(let again, _) = HTTPRequestParser.parse(request.serialized(), limits: .standard) else {
            return "serialized request did not parse for \(wireText)"
        }
        if withoutFraming(again) != withoutFraming(request) { return "round trip changed the request for \(wireText)" }
        guard case .complete(let third, _) = HTTPRequestParser.parse(again.serialized(), limits: .standard), third == again else {
            return "serialized() is not a fixed point for \(wireText)"
        }

        // Any strict prefix is incomplete, with the head reported once it is whole.
        let cut = rng.below(generated.wire.count)
        guard case .needMore(let progress) = HTTPRequestParser.parse(Array(generated.wire[..<cut]), limits: .standard) else {
            return "prefix of \(cut) bytes was not needMore for \(wireText)"
        }
        if (progress.head != nil) != (cut >= generated.headLength) {
            return "prefix of \(cut) bytes (head is \(generated.headLength)) reported head \(progress.head != nil)"
        }

        // Pipelining: another request right behind this one.
        if rng.chance(20) {
            let next = Generator.request(&rng)
            let buffer = generated.wire + next.wire
            guard case .complete(let first, let firstLength) = HTTPRequestParser.parse(buffer, limits: .standard),
                  first == request, firstLength == generated.wire.count,
                  case .complete(let second, let secondLength) = HTTPRequestParser.parse(Array(buffer[firstLength...]), limits: .standard),
                  second.body == next.body, secondLength == next.wire.count
            else {
                return "pipelined pair did not parse as two requests"
            }
        }
        return nil
    }

    @Test func mutatedRequestsNeverBreakTheParserInvariants() async {
        var issues = 0
        for iteration in 0..<Self.iterations where issues < 5 {
            await Self.yieldNow(iteration)
            let seed = 0xBAD_5EED &+ UInt64(iteration) &* 0x9E37_79B9
            if let problem = checkMutatedRequest(seed: seed) {
                Issue.record("seed \(seed): \(problem)")
                issues += 1
            }
        }
    }

    private func checkMutatedRequest(seed: UInt64) -> String? {
        var rng = SplitMix64(seed: seed)
        let input = Generator.mutate(Generator.request(&rng).wire, &rng)
        for limits in [HTTPLimits.standard, smallLimits] {
            if let problem = invariantViolation(input, limits: limits) {
                return problem + " (\(input.count) bytes, limits \(limits))"
            }
            if !input.isEmpty, let problem = prefixViolation(input, cut: rng.below(input.count), limits: limits) {
                return problem
            }
        }
        return nil
    }

    @Test func randomBytesNeverBreakTheParserInvariants() async {
        var issues = 0
        for iteration in 0..<(Self.iterations / 4) where issues < 5 {
            await Self.yieldNow(iteration)
            let seed = 0x5EED_0000 &+ UInt64(iteration)
            var rng = SplitMix64(seed: seed)
            // Mostly printable with line breaks, so some inputs get past the request line.
            var input: [UInt8] = []
            for _ in 0..<rng.inRange(0...600) {
                input.append(rng.chance(80) ? rng.pick(Array("GET / HTTP/1.1\r\nHost:a\r\nContent-Length: 5\r\n;0f ".utf8)) : rng.byte())
            }
            for limits in [HTTPLimits.standard, smallLimits] {
                if let problem = invariantViolation(input, limits: limits) {
                    Issue.record("seed \(seed): \(problem)")
                    issues += 1
                }
            }
        }
    }

    /// Resuming from the progress of a shorter input is the same as parsing from the start:
    /// any request, valid or damaged, cut into any pieces, gives the same requests, the
    /// same consumed counts, the same failure (so every limit is decided at the same byte)
    /// and the same progress as parsing the whole buffer at once, while the parser looks
    /// at each byte only a bounded number of times.
    @Test func parsingInPiecesGivesTheSameResultsAsParsingAtOnce() async {
        var issues = 0
        for iteration in 0..<(Self.iterations / 4) where issues < 5 {
            await Self.yieldNow(iteration)
            let seed = 0x1_7C0_0000 &+ UInt64(iteration) &* 0x9E37_79B9
            if let problem = checkPiecewiseParsing(seed: seed) {
                Issue.record("seed \(seed): \(problem)")
                issues += 1
            }
        }
    }

    private func checkPiecewiseParsing(seed: UInt64) -> String? {
        var rng = SplitMix64(seed: seed)
        var input = Generator.request(&rng).wire
        switch rng.below(4) {
        case 0: input = Generator.mutate(input, &rng)
        case 1: input += Generator.request(&rng).wire  // pipelined
        case 2:
            let next = Generator.request(&rng).wire
            input += next[..<rng.below(next.count)]  // pipelined, second one incomplete
        default: break
        }
        let limits = rng.chance(30) ? smallLimits : .standard
        let pieces = randomPieceSizes(for: input.count, &rng)

        var examined = 0
        var calls = 0
        let atOnce = connectionResults(input, pieceSizes: [], limits: limits, examined: &examined, calls: &calls)
        examined = 0
        calls = 0
        let inPieces = connectionResults(input, pieceSizes: pieces, limits: limits, examined: &examined, calls: &calls)
        let text = String(decoding: input.prefix(200), as: UTF8.self).debugDescription
        if inPieces != atOnce {
            return "in \(pieces.count) pieces: \(inPieces), at once: \(atOnce), for \(input.count) bytes \(text)"
        }
        // Lines are scanned once (a CR at the end of a piece is looked at again), the head
        // and the body copied once.
        if examined > 3 * input.count + calls {
            return "examined \(examined) bytes of \(input.count) in \(calls) calls for \(text)"
        }
        return nil
    }

    @Test func inputsOverTheLimitsAreNeverLeftWaiting() {
        // maxRequestBytes is the buffer cap a connection relies on; probe every framing
        // with input just past it.
        let limits = smallLimits
        let over = limits.maxRequestBytes + 1
        let heads = [
            "GET /",
            "GET / HTTP/1.1\r\nX: ",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 128\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1;",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: ",
        ]
        var rng = SplitMix64(seed: 42)
        for head in heads {
            for _ in 0..<20 {
                var input = Array(head.utf8)
                while input.count < over {
                    // Keep the input plausible for as long as possible: valid chunks, long values.
                    input += rng.chance(50) ? Array("1;e\r\nx\r\n".utf8) : [UInt8(ascii: "a")]
                }
                if let problem = invariantViolation(input, limits: limits) {
                    Issue.record("\(head.debugDescription): \(problem)")
                    break
                }
            }
        }
    }
}
