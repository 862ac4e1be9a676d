import NIOConcurrencyHelpers
import NIOCore

/// Work submitted on an event loop during one turn, handed over together once the loop has handled
/// everything it read in that turn: many attempts that arrived at once become one script call
/// instead of one each (Redis spends most of a small script's cost on the call itself).
final class TurnBatches<Key: Hashable & Sendable, Item: Sendable>: Sendable {
    private let waiting = NIOLockedValueBox<[ObjectIdentifier: [Key: [Item]]]>([:])

    /// Adds `item` under `key`; the first item of a turn schedules `send`, which receives every item
    /// added on `eventLoop` until it runs, grouped by key in the order they came.
    func add(_ item: Item, under key: Key, on eventLoop: any EventLoop, send: @escaping @Sendable ([Key: [Item]]) -> Void) {
        let loop = ObjectIdentifier(eventLoop)
        let firstOfTurn = waiting.withLockedValue { waiting in
            defer { waiting[loop, default: [:]][key, default: []].append(item) }
            return waiting[loop] == nil
        }
        guard firstOfTurn else { return }
        // `execute` runs after the loop has finished the reads (or the replies) of this turn.
        eventLoop.execute { [self] in
            let batches = waiting.withLockedValue { $0.removeValue(forKey: loop) } ?? [:]
            send(batches)
        }
    }
}
