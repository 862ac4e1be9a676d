import NIOCore
import RESP
@testable import SoukRedis
import Testing

/// The connection's bookkeeping, without NIO: promises are plain strings here.
@Suite("Redis connection state machine")
struct RedisConnectionStateMachineTests {
    typealias Machine = RedisConnectionStateMachine<String>

    func token(_ text: String) -> RESPToken {
        var buffer = ByteBuffer(string: text)
        return try! RESPToken.read(from: &buffer)!
    }

    @Test func repliesCompleteRequestsInOrderAndBatchesWhole() {
        var machine = Machine()
        guard case .write = machine.send(expecting: 1, deadline: 100, promise: "a") else { Issue.record("not written"); return }
        guard case .write = machine.send(expecting: 2, deadline: 100, promise: "b") else { Issue.record("not written"); return }
        guard case .succeed("a", let first) = machine.receive(token(":1\r\n")) else { Issue.record("a not completed"); return }
        #expect(first.map(\.value) == [.integer(1)])
        guard case .none = machine.receive(token(":2\r\n")) else { Issue.record("b completed early"); return }
        guard case .succeed("b", let second) = machine.receive(token(":3\r\n")) else { Issue.record("b not completed"); return }
        #expect(second.map(\.value) == [.integer(2), .integer(3)])
        #expect(machine.pending.isEmpty && !machine.isClosed)
    }

    @Test func aTimeoutFailsEverythingPendingAndClosesForGood() {
        var machine = Machine()
        _ = machine.send(expecting: 1, deadline: 50, promise: "early")
        _ = machine.send(expecting: 1, deadline: 500, promise: "late")
        guard case .none = machine.checkDeadlines(now: 49) else { Issue.record("timed out too soon"); return }
        guard case .close(let failing, let error) = machine.checkDeadlines(now: 50) else { Issue.record("no timeout"); return }
        #expect(failing == ["early", "late"] && error.code == .timeout)
        guard case .fail(let refused) = machine.send(expecting: 1, deadline: 1_000, promise: "after") else { Issue.record("sent on a closed connection"); return }
        #expect(refused.code == .timeout)
        guard case .none = machine.receive(token(":1\r\n")) else { Issue.record("late reply was matched"); return }
    }

    @Test func cancellingAWaitingRequestClosesTheConnection() {
        var machine = Machine()
        guard case .write(let first) = machine.send(expecting: 1, deadline: 100, promise: "a") else { return }
        guard case .write = machine.send(expecting: 1, deadline: 100, promise: "b") else { return }
        guard case .close(let failing, let error) = machine.cancel(id: first) else { Issue.record("cancel ignored"); return }
        #expect(failing == ["a", "b"] && error.code == .cancelled)
        guard case .none = machine.cancel(id: first) else { Issue.record("closed twice"); return }
    }

    @Test func cancellingAnAnsweredRequestChangesNothing() {
        var machine = Machine()
        guard case .write(let id) = machine.send(expecting: 1, deadline: 100, promise: "a") else { return }
        _ = machine.receive(token("+OK\r\n"))
        guard case .none = machine.cancel(id: id) else { Issue.record("closed needlessly"); return }
        #expect(!machine.isClosed)
    }

    @Test func aReplyNobodyAskedForClosesTheConnection() {
        var machine = Machine()
        guard case .close(let failing, let error) = machine.receive(token("+OK\r\n")) else { Issue.record("stray reply accepted"); return }
        #expect(failing.isEmpty && error.code == .protocolError && machine.isClosed)
    }

    @Test func aClosedChannelFailsWhatIsPending() {
        var machine = Machine()
        _ = machine.send(expecting: 1, deadline: 100, promise: "a")
        #expect(machine.closed() == ["a"])
        #expect(machine.closedBy?.code == .connectionClosed)
        #expect(machine.closed().isEmpty)
    }
}
