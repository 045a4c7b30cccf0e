import Platform

// The watch lives in Platform (it is inotify); the loop it registers with lives here.
extension StateDirectoryWatch: EventLoopHandler {}

extension StateDirectoryWatch {
    /// Watches `path` from `loop`: inotify on the epoll backend, "always changed" otherwise.
    public convenience init?(path: String, loop: EventLoop, changedOnTick: Bool = true) {
        self.init(path: path, useInotify: loop.backend.usesLinuxExtensions, changedOnTick: changedOnTick) {
            fd, watch in
            do {
                try loop.register(fd: fd, handler: watch, first: true)
                return true
            } catch {
                return false
            }
        }
    }
}
