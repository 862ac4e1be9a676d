/// Group commit: items submitted while earlier groups are being written wait, then go together in
/// the next group, so the database runs one statement for many of them instead of one each. Up to
/// `maximumInFlight` groups are written at once: the next group is on its way while the last one
/// runs, so the database never idles for a round trip.
///
/// A group is written in a task of its own, not the submitter's: a caller that gives up (a client
/// that went away) never cancels the writing of the others' items.
public actor GroupCommit<Item: Sendable, Answer: Sendable> {
    /// Writes a group; answers each item, in order.
    public typealias Write = @Sendable ([Item]) async throws -> [Answer]

    private let write: Write
    private let maximumGroup: Int
    private let maximumInFlight: Int
    private var waiting: [(item: Item, continuation: CheckedContinuation<Answer, any Error>)] = []
    private var inFlight = 0

    public init(maximumGroup: Int = 256, maximumInFlight: Int = 2, write: @escaping Write) {
        precondition(maximumGroup > 0 && maximumInFlight > 0)
        self.write = write
        self.maximumGroup = maximumGroup
        self.maximumInFlight = maximumInFlight
    }

    /// The item's answer, once its group is written; the write's error if that failed.
    public func submit(_ item: Item) async throws -> Answer {
        try await withCheckedThrowingContinuation { continuation in
            waiting.append((item, continuation))
            startGroups()
        }
    }

    private func startGroups() {
        while inFlight < maximumInFlight, !waiting.isEmpty {
            let group = Array(waiting.prefix(maximumGroup))
            waiting.removeFirst(group.count)
            inFlight += 1
            Task { await self.write(group) }
        }
    }

    private func write(_ group: [(item: Item, continuation: CheckedContinuation<Answer, any Error>)]) async {
        do {
            let answers = try await write(group.map(\.item))
            guard answers.count == group.count else { throw GroupCommitError.answersDoNotMatch(items: group.count, answers: answers.count) }
            for (member, answer) in zip(group, answers) { member.continuation.resume(returning: answer) }
        } catch {
            for member in group { member.continuation.resume(throwing: error) }
        }
        inFlight -= 1
        startGroups()
    }
}

public enum GroupCommitError: Error, Equatable {
    /// A write must answer every item of its group.
    case answersDoNotMatch(items: Int, answers: Int)
}
