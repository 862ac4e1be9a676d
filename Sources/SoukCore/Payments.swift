import Foundation
import Synchronization

/// A card as the buyer typed it, checked before anything is sent: digits that pass the Luhn check,
/// a month and year not past, a 3- or 4-digit code. It is handed to the provider at once for a
/// token; Souk never stores it.
public struct PaymentCard: Sendable, Equatable {
    public let number: String
    public let expiryMonth: Int
    public let expiryYear: Int
    public let securityCode: String

    /// Problems are reported on `card.number`, `card.exp_month`, `card.exp_year` and `card.cvc`.
    public init(number: String?, expiryMonth: Int?, expiryYear: Int?, securityCode: String?, now: Date) throws(SoukError) {
        var errors: [FieldError] = []
        let digits = (number ?? "").filter { $0 != " " && $0 != "-" }
        if !(12...19).contains(digits.count) || !digits.allSatisfy(\.isASCIIDigit) {
            errors.append(.init(field: "card.number", message: "must be a card number of 12 to 19 digits"))
        } else if !Self.passesLuhn(digits) {
            errors.append(.init(field: "card.number", message: "is not a valid card number: check the digits"))
        }
        let today = Calendar(identifier: .gregorian).dateComponents(in: TimeZone(identifier: "UTC")!, from: now)
        let month = expiryMonth ?? 0, year = expiryYear ?? 0
        if !(1...12).contains(month) { errors.append(.init(field: "card.exp_month", message: "must be a month from 1 to 12")) }
        if !((today.year ?? 0)...((today.year ?? 0) + 30)).contains(year) {
            errors.append(.init(field: "card.exp_year", message: "must be this year or a later one"))
        } else if year == today.year, (1...12).contains(month), month < (today.month ?? 1) {
            errors.append(.init(field: "card.exp_month", message: "the card has expired"))
        }
        let code = securityCode ?? ""
        if !(3...4).contains(code.count) || !code.allSatisfy(\.isASCIIDigit) {
            errors.append(.init(field: "card.cvc", message: "must be the 3 or 4 digits on the card"))
        }
        guard errors.isEmpty else { throw .validationFailed(errors) }
        self.number = digits
        self.expiryMonth = month
        self.expiryYear = year
        self.securityCode = code
    }

    public var lastFour: Substring { number.suffix(4) }

    static func passesLuhn(_ digits: String) -> Bool {
        var sum = 0
        for (index, character) in digits.reversed().enumerated() {
            guard let digit = character.wholeNumberValue else { return false }
            sum += index % 2 == 1 ? (digit * 2 > 9 ? digit * 2 - 9 : digit * 2) : digit
        }
        return sum % 10 == 0
    }
}

/// A charge as Souk asks the provider for it. `key` (the checkout's id) is the idempotency key of
/// every call about it: asking again after a crash or a lost answer never charges twice.
public struct ProviderCharge: Sendable, Equatable {
    public let key: String
    public let amountMinor: Int64
    public let currency: String
    /// The provider's token for the card (never the number).
    public let cardToken: String

    public init(key: String, amountMinor: Int64, currency: String, cardToken: String) {
        self.key = key
        self.amountMinor = amountMinor
        self.currency = currency
        self.cardToken = cardToken
    }
}

/// The provider's answer to an authorization.
public enum Authorization: Sendable, Equatable {
    /// The amount is reserved on the card until captured or cancelled.
    case authorized
    /// Already captured (an earlier attempt got this far before a crash).
    case captured
    case declined(reason: String)
    /// The provider answers later (its event says when): ask again.
    case pending
}

/// A card payment provider (Stripe-like): tokens for cards, and charges authorized, captured on
/// confirmation, and cancelled or refunded otherwise — every call idempotent by the charge's key.
/// Calls that get no answer in `timeout` throw ``PaymentProviderUnavailable``; the saga asks again.
public protocol PaymentProvider: Sendable {
    /// The token the provider gives for `card` (what its own script would give a browser).
    func tokenize(_ card: PaymentCard) async throws -> String
    func authorize(_ charge: ProviderCharge, timeout: Duration) async throws -> Authorization
    /// Takes the authorized amount. Capturing a captured charge does nothing more.
    func capture(_ charge: ProviderCharge, timeout: Duration) async throws
    /// Undoes a charge whatever it reached: an authorization is cancelled, a capture refunded, and
    /// a charge the provider never heard of can no longer be made (a later authorization with its
    /// key is declined). Doing it twice does nothing more.
    func release(_ charge: ProviderCharge, timeout: Duration) async throws
}

/// The provider could not be asked or did not answer in time: nothing is known, ask again (a
/// client is told 503 with `Retry-After`).
public struct PaymentProviderUnavailable: TemporaryFailure, CustomStringConvertible {
    public let description: String
    public var isTemporary: Bool { true }
    public init(_ description: String) { self.description = description }
}

/// The embedded default (`SOUK_PAYMENTS=simulated`): a provider inside the process, whose test
/// cards behave as named in ``TestCard``; any other valid number is approved. Its charges live in
/// the process's memory — for demos and tests; a shop takes cards through an https provider.
public final class SimulatedPaymentProvider: PaymentProvider {
    /// The card numbers whose behaviour is known in advance.
    public enum TestCard: String, CaseIterable, Sendable {
        case approved = "4242424242424242"
        case declined = "4000000000000002"
        /// Authorized, but the answer comes `lateBy` later (and an event says so).
        case late = "4000000000003220"
        /// The provider never answers an authorization.
        case silent = "4000000000000119"
    }

    /// A charge as the provider keeps it.
    public struct Charge: Sendable, Equatable {
        public enum State: String, Sendable { case pending, authorized, declined, captured, cancelled, refunded }
        public var amountMinor: Int64
        public var state: State
        public var createdAt: ContinuousClock.Instant
    }

    /// What the provider holds: captured minus refunded is what it took from cards.
    public struct Totals: Sendable, Equatable {
        public var capturedMinor: Int64 = 0
        public var refundedMinor: Int64 = 0
        public var captures = 0

        public init(capturedMinor: Int64 = 0, refundedMinor: Int64 = 0, captures: Int = 0) {
            self.capturedMinor = capturedMinor
            self.refundedMinor = refundedMinor
            self.captures = captures
        }
    }

    let lateBy: Duration
    /// Called when a late authorization is decided, as the provider's event would arrive.
    let onDecided: @Sendable (_ key: String) async -> Void
    private let state = Mutex<(charges: [String: Charge], totals: Totals)>(([:], Totals()))

    public init(lateBy: Duration = .seconds(3), onDecided: @escaping @Sendable (_ key: String) async -> Void = { _ in }) {
        self.lateBy = lateBy
        self.onDecided = onDecided
    }

    public var totals: Totals { state.withLock { $0.totals } }
    public func charge(_ key: String) -> Charge? { state.withLock { $0.charges[key] } }

    public func tokenize(_ card: PaymentCard) async throws -> String {
        let behaviour = TestCard(rawValue: card.number).map { "\($0)" } ?? "approved"
        return "pm_sim_\(behaviour)_\(card.lastFour)_\(OrderReference.random(length: 12))"
    }

    public func authorize(_ charge: ProviderCharge, timeout: Duration) async throws -> Authorization {
        let behaviour = charge.cardToken.split(separator: "_").dropFirst(2).first.flatMap { TestCard(caseName: String($0)) } ?? .approved
        if behaviour == .silent {
            try await Task.sleep(for: timeout)
            throw PaymentProviderUnavailable("the simulated provider did not answer within \(timeout)")
        }
        let now = ContinuousClock.now
        let (answer, startedLate) = state.withLock { state -> (Authorization, Bool) in
            if var existing = state.charges[charge.key] {
                if existing.state == .pending, now - existing.createdAt >= lateBy {
                    existing.state = .authorized
                    state.charges[charge.key] = existing
                }
                return (Self.authorization(existing.state), false)
            }
            let initial: Charge.State = switch behaviour {
            case .declined: .declined
            case .late: .pending
            case .approved, .silent: .authorized
            }
            state.charges[charge.key] = Charge(amountMinor: charge.amountMinor, state: initial, createdAt: now)
            return (Self.authorization(initial), initial == .pending)
        }
        if startedLate {
            let (lateBy, onDecided, key) = (lateBy, onDecided, charge.key)
            Task {
                try? await Task.sleep(for: lateBy)
                await onDecided(key)
            }
        }
        return answer
    }

    static func authorization(_ state: Charge.State) -> Authorization {
        switch state {
        case .pending: .pending
        case .authorized: .authorized
        case .captured: .captured
        case .declined: .declined(reason: "the card was declined")
        case .cancelled, .refunded: .declined(reason: "the payment was cancelled")
        }
    }

    public func capture(_ charge: ProviderCharge, timeout: Duration) async throws {
        let key = charge.key
        try state.withLock { state in
            guard var charge = state.charges[key] else { throw PaymentProviderUnavailable("no charge \(key) to capture") }
            switch charge.state {
            case .captured: return
            case .authorized:
                charge.state = .captured
                state.charges[key] = charge
                state.totals.capturedMinor += charge.amountMinor
                state.totals.captures += 1
            case .pending, .declined, .cancelled, .refunded:
                throw PaymentProviderUnavailable("charge \(key) cannot be captured: \(charge.state.rawValue)")
            }
        }
    }

    public func release(_ charge: ProviderCharge, timeout: Duration) async throws {
        let key = charge.key
        state.withLock { state in
            guard var charge = state.charges[key] else {
                // Released before it was ever authorized (an authorization still on its way from a
                // runner that lost its lease): the key is spent, and a late authorization is declined.
                state.charges[key] = Charge(amountMinor: 0, state: .cancelled, createdAt: .now)
                return
            }
            switch charge.state {
            case .pending, .authorized: charge.state = .cancelled
            case .captured:
                charge.state = .refunded
                state.totals.refundedMinor += charge.amountMinor
            case .declined, .cancelled, .refunded: return
            }
            state.charges[key] = charge
        }
    }
}

extension SimulatedPaymentProvider.TestCard {
    init?(caseName: String) {
        guard let card = Self.allCases.first(where: { "\($0)" == caseName }) else { return nil }
        self = card
    }
}
