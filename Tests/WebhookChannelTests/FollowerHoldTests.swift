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
}
