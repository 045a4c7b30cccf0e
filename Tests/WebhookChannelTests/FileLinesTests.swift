import Foundation
import Testing
@testable import Platform

/// Reading a file's lines a chunk at a time (`FileLines`, used for every read of the event
/// log) gives exactly what splitting the whole file would: lines across chunk boundaries,
/// lines longer than a chunk, a torn last line, and the offset and length of each.
struct FileLinesTests {
    static func lines(of text: String, chunkBytes: Int) throws -> [(String, Int, Int)] {
        let dir = try TempStateDir()
        defer { dir.remove() }
        try dir.createStateDir()
        let path = dir.url.appendingPathComponent("lines").path
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        var seen: [(String, Int, Int)] = []
        try FileLines.forEach(path: path, chunkBytes: chunkBytes) { line, offset, length in
            seen.append((String(decoding: line, as: UTF8.self), offset, length))
            return true
        }
        return seen
    }

    /// What splitting the whole text at its newlines gives.
    static func expected(_ text: String) -> [(String, Int, Int)] {
        var result: [(String, Int, Int)] = []
        var offset = 0
        var rest = Substring(text)
        while !rest.isEmpty {
            if let newline = rest.firstIndex(of: "\n") {
                let line = String(rest[..<newline])
                result.append((line, offset, line.utf8.count + 1))
                offset += line.utf8.count + 1
                rest = rest[rest.index(after: newline)...]
            } else {
                result.append((String(rest), offset, rest.utf8.count))
                rest = ""
            }
        }
        return result
    }

    @Test(arguments: [1, 2, 3, 7, 64, 1 << 20])
    func everyChunkSizeGivesTheLinesOfTheWholeFile(chunkBytes: Int) throws {
        let text = "first\n\nsecond line\n" + String(repeating: "long", count: 50) + "\nlast, torn"
        let seen = try Self.lines(of: text, chunkBytes: chunkBytes)
        let expected = Self.expected(text)
        #expect(seen.map(\.0) == expected.map(\.0))
        #expect(seen.map(\.1) == expected.map(\.1))
        #expect(seen.map(\.2) == expected.map(\.2))
    }

    @Test func aVisitThatSaysStopEndsTheRead() throws {
        let dir = try TempStateDir()
        defer { dir.remove() }
        try dir.createStateDir()
        let path = dir.url.appendingPathComponent("lines").path
        try Data("a\nb\nc\n".utf8).write(to: URL(fileURLWithPath: path))
        var seen: [String] = []
        try FileLines.forEach(path: path, chunkBytes: 1) { line, _, _ in
            seen.append(String(decoding: line, as: UTF8.self))
            return seen.count < 2
        }
        #expect(seen == ["a", "b"])
    }

    @Test func aMissingFileHasNoLinesAndADirectoryCannotBeRead() throws {
        let dir = try TempStateDir()
        defer { dir.remove() }
        try dir.createStateDir()
        var count = 0
        try FileLines.forEach(path: dir.url.appendingPathComponent("absent").path) { _, _, _ in count += 1; return true }
        #expect(count == 0)
        #expect(throws: FileLines.Unreadable.self) {
            try FileLines.forEach(path: dir.path) { _, _, _ in true }
        }
    }
}
