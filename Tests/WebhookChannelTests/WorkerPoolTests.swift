import Foundation
import Synchronization
import Testing
@testable import Platform

/// `WorkerPool` (Platform): at most `size` threads, started as jobs need them, share one FIFO;
/// a job that finds every thread busy waits there until one finishes. Each test has a pool
/// of its own with a name of its own, so tests running in parallel never see each other's
/// threads. Nothing here sleeps: jobs block on semaphores the test opens.
@Suite struct WorkerPoolTests {
    /// What the jobs did, in order.
    final class Journal: Sendable {
        private let entries = Mutex<[Int]>([])
        func append(_ entry: Int) { entries.withLock { $0.append(entry) } }
        var all: [Int] { entries.withLock { $0 } }
    }

    /// `count` semaphores, one per job, each opened by the test.
    static func gates(_ count: Int) -> [DispatchSemaphore] {
        (0..<count).map { _ in DispatchSemaphore(value: 0) }
    }

    @Test func theJobAfterNRunningOnesWaitsInTheFIFOUntilOneOfThemFinishes() async throws {
        let pool = WorkerPool(name: "wp-waits", size: 3)
        let started = Journal()
        let finished = Journal()
        let gates = Self.gates(4)
        for index in 0..<4 {
            pool.async {
                started.append(index)
                gates[index].wait()
                finished.append(index)
            }
        }
        _ = try await poll("three jobs running") { started.all.count >= 3 ? true : nil }

        #expect(Set(started.all) == [0, 1, 2], "the first three given are the three running")
        #expect(pool.threadCount == 3)
        #expect(pool.queuedCount == 1, "the fourth waits in the FIFO")

        gates[1].signal()
        _ = try await poll("the fourth job to start once the second finished") { started.all.contains(3) ? true : nil }
        #expect(finished.all == [1], "it started only after one finished")
        #expect(pool.threadCount == 3, "no thread beyond the pool's size")
        for gate in gates { gate.signal() }
        _ = try await poll("every job to finish") { finished.all.count == 4 ? true : nil }
    }

    @Test func waitingJobsRunInTheOrderTheyWereGiven() async throws {
        let pool = WorkerPool(name: "wp-fifo", size: 2)
        let order = Journal()
        let gates = Self.gates(2)
        let holding = Journal()
        for index in 0..<2 {
            pool.async {
                holding.append(index)
                gates[index].wait()
            }
        }
        _ = try await poll("both threads held") { holding.all.count == 2 ? true : nil }
        for index in 1...8 { pool.async { order.append(index) } }
        #expect(pool.queuedCount == 8)

        // One thread is freed; the other stays held, so the eight run one after another.
        gates[0].signal()
        _ = try await poll("the eight queued jobs to run") { order.all.count == 8 ? true : nil }
        #expect(order.all == Array(1...8))
        gates[1].signal()
    }

    @Test(.enabled(if: canListThreads))
    func aPoolStartsNoThreadBeforeItsFirstJob() async throws {
        let pool = WorkerPool(name: "wp-lazy", size: 4)
        #expect(pool.threadCount == 0)
        #expect(!threadNames().contains { $0.hasPrefix("wp-lazy") })

        let done = Journal()
        pool.async { done.append(1) }
        #expect(pool.threadCount == 1, "one job, one thread")
        _ = try await poll("the job to run") { done.all == [1] ? true : nil }
        let names = try await poll("the pool's thread to appear by name") {
            let names = threadNames().filter { $0.hasPrefix("wp-lazy") }
            return names.isEmpty ? nil : names
        }
        #expect(names == ["wp-lazy-1"])
    }

    @Test(.enabled(if: canListThreads))
    func twentyBlockedJobsOnAPoolOfFourHoldFourThreadsAndAllRunInTheEnd() async throws {
        let pool = WorkerPool(name: "wp-flood", size: 4)
        let started = Journal()
        let finished = Journal()
        let gate = DispatchSemaphore(value: 0)
        for index in 0..<20 {
            pool.async {
                started.append(index)
                gate.wait()
                finished.append(index)
            }
        }
        _ = try await poll("four jobs running") { started.all.count >= 4 ? true : nil }

        #expect(started.all.count == 4)
        #expect(pool.queuedCount == 16)
        #expect(threadNames().filter { $0.hasPrefix("wp-flood") }.count == 4)

        for _ in 0..<20 { gate.signal() }
        _ = try await poll("all twenty jobs to finish") { finished.all.count == 20 ? true : nil }
        #expect(Set(finished.all) == Set(0..<20))
        #expect(pool.threadCount == 4)
        #expect(threadNames().filter { $0.hasPrefix("wp-flood") }.count == 4)
    }
}
