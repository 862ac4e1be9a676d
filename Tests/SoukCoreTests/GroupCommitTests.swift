import Synchronization
import SoukCore
import Testing

@Suite("Group commit")
struct GroupCommitTests {
    /// Records each group it is asked to write; a write waits until the test lets it finish.
    final class Recorder: Sendable {
        let groups = Mutex<[[Int]]>([])
        let writing = Mutex(0)
        let mostWriting = Mutex(0)
        let gate: AsyncStream<Void>
        let open: AsyncStream<Void>.Continuation

        init() { (gate, open) = AsyncStream.makeStream(of: Void.self) }

        func write(_ items: [Int]) async throws -> [String] {
            groups.withLock { $0.append(items) }
            let now = writing.withLock { $0 += 1; return $0 }
            mostWriting.withLock { $0 = max($0, now) }
            for await _ in gate { break }
            writing.withLock { $0 -= 1 }
            if items.contains(-1) { throw Failure() }
            return items.map { "answer \($0)" }
        }

        var groupCount: Int { groups.withLock { $0.count } }

        func waitForGroups(_ count: Int) async throws {
            while groupCount < count { try await Task.sleep(for: .milliseconds(2)) }
        }
    }

    struct Failure: Error {}

    @Test func itemsSubmittedDuringAWriteGoTogetherInTheNextGroupAndEachGetsItsOwnAnswer() async throws {
        let recorder = Recorder()
        let commit = GroupCommit<Int, String>(maximumGroup: 100, maximumInFlight: 1) { try await recorder.write($0) }
        try await withThrowingTaskGroup(of: (Int, String).self) { tasks in
            tasks.addTask { (0, try await commit.submit(0)) }
            try await recorder.waitForGroups(1)  // the first group is being written: [0]
            for item in 1...50 { tasks.addTask { (item, try await commit.submit(item)) } }
            try await Task.sleep(for: .milliseconds(50))
            #expect(recorder.groupCount == 1, "nothing else is written while the one allowed group runs")
            recorder.open.yield()
            try await recorder.waitForGroups(2)
            recorder.open.yield()
            for try await (item, answer) in tasks { #expect(answer == "answer \(item)") }
        }
        let groups = recorder.groups.withLock { $0 }
        #expect(groups.count == 2 && groups[0] == [0] && Set(groups[1]) == Set(1...50), "the fifty waited and went as one group")
    }

    @Test func groupsAreCappedInSizeAndInHowManyAreWrittenAtOnce() async throws {
        let recorder = Recorder()
        let commit = GroupCommit<Int, String>(maximumGroup: 10, maximumInFlight: 2) { try await recorder.write($0) }
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            for item in 0..<45 {
                tasks.addTask {
                    let answer = try await commit.submit(item)
                    #expect(answer == "answer \(item)")
                }
            }
            try await recorder.waitForGroups(2)
            while recorder.groups.withLock({ $0.joined().count }) < 45 {
                recorder.open.yield()
                try await Task.sleep(for: .milliseconds(2))
            }
            recorder.open.finish()
            try await tasks.waitForAll()
        }
        let groups = recorder.groups.withLock { $0 }
        #expect(groups.allSatisfy { $0.count <= 10 } && groups.joined().sorted() == Array(0..<45))
        #expect(recorder.mostWriting.withLock { $0 } == 2)
    }

    @Test func aFailedWriteFailsItsOwnGroupOnly() async throws {
        let recorder = Recorder()
        recorder.open.finish()  // writes never wait
        let commit = GroupCommit<Int, String>(maximumInFlight: 1) { try await recorder.write($0) }
        await #expect(throws: Failure.self) { try await commit.submit(-1) }
        #expect(try await commit.submit(7) == "answer 7")
        let short = GroupCommit<Int, String>(maximumInFlight: 1) { _ in [] }
        await #expect(throws: GroupCommitError.answersDoNotMatch(items: 1, answers: 0)) { try await short.submit(1) }
    }
}
