import Foundation
import Logging
import ServiceLifecycle
import SoukCore
import CoreMetrics

/// Drives checkout sagas to their one terminal state: leases due sagas from the database, calls the
/// verifier within the deadline stored with each saga, then confirms (capture, payment) or fails
/// (compensations), each in one transaction that only the first decision can make. A card payment
/// is authorized at the provider before the verifier is asked and captured before the confirmation;
/// every provider call carries the checkout's id as its idempotency key, so a saga resumed after a
/// crash charges nothing twice, and the charge of a failed one is released (cancelled or refunded)
/// by whichever runner finds it owed. A runner that dies leaves leases that expire; another runner
/// resumes those sagas. Results are announced through `onResult` the moment they are committed.
public struct CheckoutSagaRunner: Service {
    public enum Step: String, Sendable {
        case claimed, authorized, verified, captured, decided
    }

    let store: any CheckoutStore
    let verifier: any UserVerifier
    let payments: any PaymentProvider
    let owner: String
    let lease: Duration
    let pollInterval: Duration
    let logger: Logger
    let onResult: @Sendable (CheckoutDecision) async -> Void
    /// Approvals are confirmed in groups (one statement for many sagas), one group at a time.
    let confirmations: GroupCommit<VerifiedSaga, GroupedConfirmation>
    /// Test hook: throwing here abandons the saga as a crash at that step would.
    let fault: @Sendable (Step, String) throws -> Void

    public init(
        store: any CheckoutStore, verifier: any UserVerifier, payments: any PaymentProvider, owner: String, lease: Duration = .seconds(10), pollInterval: Duration = .milliseconds(20),
        logger: Logger, onResult: @escaping @Sendable (CheckoutDecision) async -> Void = { _ in }, fault: @escaping @Sendable (Step, String) throws -> Void = { _, _ in }
    ) {
        self.store = store
        self.verifier = verifier
        self.payments = payments
        self.owner = owner
        self.lease = lease
        self.pollInterval = pollInterval
        self.logger = logger
        self.onResult = onResult
        self.fault = fault
        self.confirmations = GroupCommit(maximumInFlight: 1) { sagas in
            let result = try await store.confirm(sagas)
            let confirmed = Set(result.confirmed), busy = Set(result.busy)
            return sagas.map { confirmed.contains($0.id) ? .confirmed : busy.contains($0.id) ? .busy : .decidedElsewhere }
        }
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                var releasesLookedAt = ContinuousClock.now - .seconds(1)
                while !Task.isCancelled {
                    do {
                        let sagas = try await store.claimSagas(owner: owner, lease: seconds(lease), limit: 200, now: Date())
                        let claimedAt = Date()
                        for saga in sagas { group.addTask { await drive(saga, claimedAt: claimedAt) } }
                        if ContinuousClock.now - releasesLookedAt >= .seconds(1) {
                            releasesLookedAt = .now
                            for checkout in try await store.claimCardReleases(owner: owner, lease: seconds(lease), limit: 100, now: Date()) {
                                group.addTask { await releaseCharge(checkout) }
                            }
                        }
                        if sagas.isEmpty { try await Task.sleep(for: pollInterval) }
                    } catch is CancellationError {
                        return
                    } catch {
                        logger.warning("claiming checkout sagas failed", metadata: ["error": "\(String(reflecting: error))"])
                        try? await Task.sleep(for: .milliseconds(500))
                    }
                }
            }
        }
    }

    /// One saga from its lease to a decision (or to a later retry).
    func drive(_ saga: CheckoutOrder, claimedAt: Date = Date()) async {
        do {
            try fault(.claimed, saga.id)
            var verdict: Bool? = nil
            var reason = "verification refused"
            if saga.deadline.timeIntervalSinceNow <= 0 {
                reason = "verification timed out"
            } else {
                var cardRefusal: String?
                if saga.cardToken != nil {
                    switch try await authorize(saga) {
                    case .proceed: break
                    case .refused(let why): cardRefusal = why
                    case .later(let delay):
                        try await store.retrySaga(id: saga.id, owner: owner, at: Date().addingTimeInterval(delay))
                        return
                    case .handedBack: return
                    }
                    try fault(.authorized, saga.id)
                }
                if let cardRefusal {
                    reason = cardRefusal
                } else {
                    let remaining = saga.deadline.timeIntervalSinceNow
                    do {
                        verdict = try await withLeaseKept(saga) {
                            try await verifier.verify(buyerID: saga.buyerID, orderID: saga.id, timeout: .milliseconds(Int64(max(0, remaining) * 1_000)))
                        }
                    } catch is VerifierTimeout {
                        reason = "verification timed out"
                    } catch is CancellationError {
                        await handBack(saga)
                        return
                    } catch is LeaseLost {
                        throw LeaseLost()
                    } catch {
                        // The verifier could not be asked (network, 5xx): try again soon, within the deadline.
                        if saga.deadline.timeIntervalSinceNow > 1 {
                            logger.info("verifier unavailable, retrying", metadata: ["souk.order_id": "\(saga.id)", "error": "\(String(reflecting: error))"])
                            try await store.retrySaga(id: saga.id, owner: owner, at: Date().addingTimeInterval(0.5))
                            return
                        }
                        reason = "verification timed out"
                    }
                }
            }
            try fault(.verified, saga.id)
            if verdict == true, let charge = charge(saga) {
                // Only while this runner still holds the saga: one whose lease ran out may have
                // been failed (and its charge released) by another meanwhile. Well within the lease
                // (the common case: a saga takes milliseconds) nobody else can have it; later, the
                // lease is renewed first, in the database.
                if Date().timeIntervalSince(claimedAt) > seconds(lease) / 3 {
                    guard try await store.renewLease(id: saga.id, owner: owner, until: Date().addingTimeInterval(seconds(lease))) else { throw LeaseLost() }
                }
                do {
                    let timeout = callTimeout(saga)
                    try await withLeaseKept(saga) { try await payments.capture(charge, timeout: timeout) }
                } catch is LeaseLost {
                    throw LeaseLost()
                } catch {
                    if saga.deadline.timeIntervalSinceNow > 1 {
                        logger.info("card capture failed, retrying", metadata: ["souk.order_id": "\(saga.id)", "error": "\(String(reflecting: error))"])
                        try await store.retrySaga(id: saga.id, owner: owner, at: Date().addingTimeInterval(0.5))
                        return
                    }
                    (verdict, reason) = (false, "payment timed out")
                }
                try fault(.captured, saga.id)
            }
            let decidedAt = Date()
            let decided = verdict == true
                ? try await confirm(VerifiedSaga(id: saga.id, answeredAt: decidedAt))
                : try await store.fail(id: saga.id, reason: reason, now: decidedAt)
            try fault(.decided, saga.id)
            if saga.cardToken != nil, !(decided && verdict == true) {
                // A failure owes the provider a release; so does a capture whose saga another runner
                // failed meanwhile (a confirmed one owes nothing).
                let failed = decided ? true : try await store.checkout(id: saga.id)?.status == .failed
                if failed { await releaseCharge(saga) }
            }
            if decided {
                let outcome = verdict == true ? "confirmed" : (reason.hasSuffix("timed out") ? "timed_out" : "failed")
                Counter(label: "souk_checkout_outcomes_total", dimensions: [("outcome", outcome)]).increment()
                logger.info("checkout decided", metadata: ["souk.order_id": "\(saga.id)", "confirmed": "\(verdict == true)"])
                await onResult(CheckoutDecision(
                    orderID: saga.id, status: verdict == true ? .confirmed : .failed, failureReason: verdict == true ? nil : reason, decidedAt: decidedAt))
            }
        } catch {
            // A crash at any step leaves the lease to expire; the saga is resumed by whoever claims it next.
            logger.warning("checkout saga step failed", metadata: ["souk.order_id": "\(saga.id)", "error": "\(String(reflecting: error))"])
        }
    }

    /// What the provider's authorization of a card payment means for its saga.
    enum AuthorizationStep {
        case proceed
        case refused(String)
        case later(TimeInterval)
        case handedBack
    }

    func authorize(_ saga: CheckoutOrder) async throws -> AuthorizationStep {
        guard let charge = charge(saga) else { return .proceed }
        do {
            let timeout = callTimeout(saga)
            switch try await withLeaseKept(saga, { try await payments.authorize(charge, timeout: timeout) }) {
            case .authorized, .captured: return .proceed
            case .declined(let why): return .refused(why)
            // The provider's event wakes the saga sooner; without one it asks again in a second.
            case .pending: return saga.deadline.timeIntervalSinceNow > 1 ? .later(1) : .refused("payment timed out")
            }
        } catch is CancellationError {
            await handBack(saga)
            return .handedBack
        } catch is LeaseLost {
            throw LeaseLost()
        } catch {
            if saga.deadline.timeIntervalSinceNow > 1 {
                logger.info("payment provider unavailable, retrying", metadata: ["souk.order_id": "\(saga.id)", "error": "\(String(reflecting: error))"])
                return .later(0.5)
            }
            return .refused("payment timed out")
        }
    }

    /// The card charge of a checkout paid by card: every provider call about it says the same.
    func charge(_ checkout: CheckoutOrder) -> ProviderCharge? {
        checkout.cardToken.map { ProviderCharge(key: checkout.id, amountMinor: checkout.totalMinor, currency: checkout.currency, cardToken: $0) }
    }

    /// Undoes a failed card checkout's charge at the provider and records it; left owed (and found
    /// again by the next runner to look) when the provider cannot be reached.
    func releaseCharge(_ checkout: CheckoutOrder) async {
        guard let charge = charge(checkout) else { return }
        let id = checkout.id
        do {
            try await payments.release(charge, timeout: .seconds(10))
            try await store.cardReleased(id: id)
        } catch {
            logger.warning("releasing a card charge failed; it stays owed", metadata: ["souk.order_id": "\(id)", "error": "\(String(reflecting: error))"])
            // The claim's lease stays: the release is tried again once it runs out (a provider that
            // refuses every time is asked once a lease, not every second).
        }
    }

    /// A provider call's limit: what is left of the saga's deadline, at most 10 s (a provider that
    /// does not answer is asked again, not waited for until the end).
    func callTimeout(_ saga: CheckoutOrder) -> Duration {
        .milliseconds(Int64(min(10, max(0.1, saga.deadline.timeIntervalSinceNow)) * 1_000))
    }

    /// Shutting down: hand the saga back at once rather than leaving the lease to expire.
    func handBack(_ saga: CheckoutOrder) async {
        let (store, owner, id) = (store, owner, saga.id)
        try? await Task { try await store.retrySaga(id: id, owner: owner, at: Date()) }.value
    }

    /// Confirms `saga` in the next group. One whose buyer's credit stays busy for a few groups (an
    /// acceptance of that buyer held it each time), or whose group could not be written, is
    /// confirmed alone, waiting for its locks: no saga is skipped forever. False when it was
    /// already decided elsewhere. (A group that committed but whose answer was lost leaves its
    /// sagas confirmed; alone, they are then found decided — never captured twice — and their
    /// streams learn it from their periodic re-read.)
    func confirm(_ saga: VerifiedSaga) async throws -> Bool {
        for _ in 0..<4 {
            switch try? await confirmations.submit(saga) {
            case .confirmed: return true
            case .decidedElsewhere: return false
            case .busy: continue
            case nil: return try await store.confirm(id: saga.id, now: saga.answeredAt)
            }
        }
        return try await store.confirm(id: saga.id, now: saga.answeredAt)
    }

    /// Runs `body` while renewing the saga's lease, so a long verification is not taken over.
    func withLeaseKept<T: Sendable>(_ saga: CheckoutOrder, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let renewing = store
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                while !Task.isCancelled {
                    try await Task.sleep(for: lease / 3)
                    // Taken over (the lease ran out) or decided elsewhere: stop working on it.
                    guard try await renewing.renewLease(id: saga.id, owner: owner, until: Date().addingTimeInterval(seconds(lease))) else { throw LeaseLost() }
                }
                return nil
            }
            group.addTask { try await body() }
            while let result = try await group.next() {
                if let result {
                    group.cancelAll()
                    return result
                }
            }
            throw CancellationError()
        }
    }

    func seconds(_ duration: Duration) -> TimeInterval {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}

/// The saga's lease was lost (another runner took it over, or it was decided): the step is
/// abandoned as a crash would, and its owner now carries it on.
struct LeaseLost: Error {}

/// What a group confirmation did with one saga.
enum GroupedConfirmation: Sendable {
    case confirmed
    /// Its buyer's credit was locked: it goes in a later group.
    case busy
    case decidedElsewhere
}
