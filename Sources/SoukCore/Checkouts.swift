import Foundation

/// The checkout use cases: accept (answered at once), read, and wait for the result.
public struct Checkouts: Sendable {
    public let store: any CheckoutStore
    public let notifier: CheckoutNotifier
    /// The hard limit of the verification, stored with each saga.
    public let deadline: Duration
    /// Cards are turned into the provider's tokens here, before anything is stored.
    public let payments: any PaymentProvider

    public init(store: any CheckoutStore, notifier: CheckoutNotifier, deadline: Duration = .seconds(60), payments: any PaymentProvider = SimulatedPaymentProvider()) {
        self.store = store
        self.notifier = notifier
        self.deadline = deadline
        self.payments = payments
    }

    public func checkout(_ request: CheckoutRequest, now: Date = Date()) async throws -> CheckoutOrder {
        switch try await store.accept(request, deadline: deadlineSeconds, now: now) {
        case .accepted(let order): return order
        case .denied(let error): throw error
        }
    }

    /// Pays for a held flash-sale order: the saga that verifies and captures it has started when
    /// this returns (the same saga, cut-off and answer streams as any checkout's). An order admitted
    /// a moment ago is recorded by the workers within milliseconds: one not found is looked for
    /// again after each of ``recordingWaits`` (about 2 s in all), so paying right after the
    /// purchase works.
    public func pay(_ request: FlashSalePaymentRequest, now: @Sendable () -> Date = Date.init) async throws -> CheckoutOrder {
        var cardToken: String?
        if let card = request.card {
            do {
                cardToken = try await payments.tokenize(card)
            } catch let error as SoukError {
                throw error
            } catch {
                throw PaymentProviderUnavailable("the payment provider did not take the card: \(error)")
            }
        }
        var waits = Self.recordingWaits[...]
        while true {
            do {
                return try await store.payFlashSaleOrder(request, cardToken: cardToken, deadline: deadlineSeconds, now: now())
            } catch let error as SoukError where error.code == "not_found" && !waits.isEmpty {
                try await Task.sleep(for: waits.removeFirst())
            }
        }
    }

    /// How long to wait, one after the other, for a flash-sale order admitted a moment ago to be
    /// recorded: a few looks, not a poll (an id that is nobody's costs these and no more).
    public static let recordingWaits: [Duration] = [.milliseconds(50), .milliseconds(150), .milliseconds(300), .milliseconds(600), .milliseconds(900)]

    private var deadlineSeconds: TimeInterval {
        Double(deadline.components.seconds) + Double(deadline.components.attoseconds) / 1e18
    }

    /// The order once it is final, or as it is after `timeout` (long poll).
    public func order(id: String, waitingUpTo timeout: Duration = .zero) async throws -> CheckoutOrder? {
        guard let current = try await store.checkout(id: id) else { return nil }
        return try await order(after: current, waitingUpTo: timeout)
    }

    /// `known` once it is final (from the announced decision, without reading it again), or as it
    /// is after `timeout`.
    public func order(after known: CheckoutOrder, waitingUpTo timeout: Duration) async throws -> CheckoutOrder {
        var order = known
        let limit = ContinuousClock.now + timeout
        while order.status == .inProgress, ContinuousClock.now < limit {
            // Woken by the decision; re-read at least every two seconds in case a wake-up was missed.
            if let decision = await notifier.wait(for: order.id, timeout: min(.seconds(2), limit - ContinuousClock.now)) {
                return order.applying(decision)
            }
            order = try await store.checkout(id: order.id) ?? order
        }
        return order
    }
}
