import Foundation
import Testing
@testable import Platform
@testable import WebhookChannel

/// Which log generations a follower still needs (README "Several sessions"): the hub counts
/// what it sent per generation, the follower says how many it passed on, and the log may not
/// rotate away a generation with an event sent and not passed on.
struct FollowerHoldTests {
    @Test func aFollowerThatPassedNothingOnHoldsTheGenerationOfTheFirstEventSent() {
        var hold = FollowerHold()
        #expect(hold.oldestGeneration == nil)
        hold.share(loggedIn: 3)
        hold.share(loggedIn: 3)
        hold.share(loggedIn: 4)
        #expect(hold.oldestGeneration == 3)
    }

    @Test func passingOnEveryEventOfAGenerationReleasesItAndOnlyThen() {
        var hold = FollowerHold()
        for _ in 0..<5 { hold.share(loggedIn: 3) }
        for _ in 0..<2 { hold.share(loggedIn: 4) }
        hold.passedOn(4)
        #expect(hold.oldestGeneration == 3, "one event of generation 3 is still not passed on")
        hold.passedOn(5)
        #expect(hold.oldestGeneration == 4)
        hold.passedOn(7)
        #expect(hold.oldestGeneration == nil)
        hold.share(loggedIn: 5)
        #expect(hold.oldestGeneration == 5)
    }

    @Test func aCountThatGoesBackIsIgnored() {
        var hold = FollowerHold()
        for _ in 0..<3 { hold.share(loggedIn: 1) }
        hold.share(loggedIn: 2)
        hold.passedOn(3)
        hold.passedOn(1)
        #expect(hold.oldestGeneration == 2)
    }

    /// A re-attaching follower is sent its catch-up, read from the log, ahead of everything
    /// shared meanwhile; the follower's count covers the catch-up first.
    @Test func aCatchUpHoldsItsGenerationUntilPassedOnAndIsCountedAheadOfSharedEvents() {
        var hold = FollowerHold()
        hold.catchUpStarts(from: 6)
        hold.share(loggedIn: 7)  // shared while the catch-up was read
        hold.share(loggedIn: 8)
        hold.passedOn(1)
        #expect(hold.oldestGeneration == 6, "the catch-up's size is not known yet: nothing is released")
        hold.catchUpSent(events: 3)
        #expect(hold.oldestGeneration == 6, "one catch-up event is not passed on")
        hold.passedOn(3)
        #expect(hold.oldestGeneration == 7)
        hold.passedOn(4)
        #expect(hold.oldestGeneration == 8)
        hold.passedOn(5)
        #expect(hold.oldestGeneration == nil)
    }

    @Test func anEmptyCatchUpHoldsNothingOnceItsSizeIsKnown() {
        var hold = FollowerHold()
        hold.catchUpStarts(from: 2)
        #expect(hold.oldestGeneration == 2)
        hold.catchUpSent(events: 0)
        #expect(hold.oldestGeneration == nil)
    }

    @Test func aLinkThatEndsHoldsNothing() {
        var hold = FollowerHold()
        hold.share(loggedIn: 1)
        hold.release()
        #expect(hold.oldestGeneration == nil)
    }

    /// The follower reports how far it got when it is about to read again: every line read so
    /// far has been handed out by then, never before.
    @Test func theFrameReaderAsksBeforeEachReadOnlyOnceEveryLineReadIsHandedOut() throws {
        var fds: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, StreamSocket.type, 0, &fds) == 0)
        defer { close(fds[0]) }
        let lines = "one\ntwo\nthree\n"
        #expect(write(fds[1], lines, lines.utf8.count) == lines.utf8.count)
        close(fds[1])
        var reader = FrameReader(fd: fds[0], maxLine: 1024)
        var handedOut = 0
        var handedOutWhenAsked: [Int] = []
        while case .line = reader.next(beforeReading: { handedOutWhenAsked.append(handedOut) }) { handedOut += 1 }
        #expect(handedOut == 3)
        // Before the first read (nothing yet), and before the read that finds the end.
        #expect(handedOutWhenAsked == [0, 3])
    }

    @Test func aLineLongerThanOneReadComesWholeAndTheNextAfterIt() throws {
        var fds: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, StreamSocket.type, 0, &fds) == 0)
        defer { close(fds[0]) }
        let long = [UInt8](repeating: UInt8(ascii: "x"), count: 200_000)
        let writer = fds[1]
        let written = Thread {
            _ = writeFully(writer, long + Array("\ntail\n".utf8))
            close(writer)
        }
        written.start()
        var reader = FrameReader(fd: fds[0], maxLine: 1 << 20)
        guard case .line(let first) = reader.next() else { Issue.record("no first line"); return }
        #expect(first == long)
        guard case .line(let second) = reader.next() else { Issue.record("no second line"); return }
        #expect(second == Array("tail".utf8))
        guard case .end = reader.next() else { Issue.record("more than two lines"); return }
    }

    /// Lines of every length from empty to past one read, sent in pieces of random sizes:
    /// each comes back whole, in order, whatever read its newline arrived in.
    @Test func linesSplitAcrossReadsAtAnyPlaceComeBackWholeAndInOrder() throws {
        var fds: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, StreamSocket.type, 0, &fds) == 0)
        defer { close(fds[0]) }
        var random = SplitMix64(seed: 0xF4A3E)
        var lines: [[UInt8]] = []
        for index in 0..<300 {
            let length = index % 50 == 0 ? 70_000 + random.below(10_000) : random.below(3_000)
            lines.append((0..<length).map { _ in UInt8(ascii: "a") + UInt8(random.below(26)) })
        }
        var stream: [UInt8] = []
        for line in lines { stream += line + [0x0A] }
        var pieces: [Int] = []
        var left = stream.count
        while left > 0 {
            let piece = min(left, 1 + random.below(5_000))
            pieces.append(piece)
            left -= piece
        }
        let writer = fds[1]
        let (sent, cuts) = (stream, pieces)
        let sender = Thread {
            var at = 0
            for piece in cuts {
                _ = writeFully(writer, Array(sent[at..<(at + piece)]))
                at += piece
            }
            close(writer)
        }
        sender.start()
        var reader = FrameReader(fd: fds[0], maxLine: 1 << 20)
        var received: [[UInt8]] = []
        while case .line(let line) = reader.next() { received.append(line) }
        #expect(received.count == lines.count)
        #expect(received == lines)
    }
}
