import Foundation

/// The threads of a process, from `/proc/<pid>/task` (Linux): one name (`comm`, at most 15
/// bytes) per thread. `pid` nil is this test process.
func threadNames(of pid: Int32? = nil) -> [String] {
    let dir = "/proc/\(pid.map(String.init) ?? "self")/task"
    let tasks = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
    return tasks.compactMap { task in
        (try? String(contentsOfFile: "\(dir)/\(task)/comm", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// Whether `/proc/<pid>/task` can be read here (Linux).
let canListThreads = FileManager.default.fileExists(atPath: "/proc/self/task")
