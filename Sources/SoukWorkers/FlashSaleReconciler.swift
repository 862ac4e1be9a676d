import Foundation
import Logging
import RESP
import SoukCore
import ServiceLifecycle
import SoukRedis

/// Compares a sale's counters in Redis (stock, buyers, orders, the stream and what is pending)
/// with the database, reports every difference, and repairs what can be repaired safely (all
/// repairs are idempotent): it replays the stream into the database, rebuilds a Redis that lost
/// the sale, and closes ended sales once everything admitted is persisted.
public struct FlashSaleReconciler: Sendable {
    let redis: RedisClient?
    let store: any FlashSaleStore
    let gate: RedisFlashSaleGate?
    let logger: Logger

    public init(redis: RedisClient?, store: any FlashSaleStore, logger: Logger) {
        self.redis = redis
        self.store = store
        self.gate = redis.map { RedisFlashSaleGate(redis: $0, store: store) }
        self.logger = logger
    }

    public struct Report: Sendable, CustomStringConvertible {
        public let saleID: Int64
        public var quantity = 0
        public var admittedInRedis: Int?
        public var ordersInRedis: Int?
        public var streamLength: Int?
        public var pending: Int?
        public var persisted = 0
        public var ordersInDatabase = 0
        public var problems: [String] = []
        public var repairs: [String] = []
        public var closed = false

        public var isConsistent: Bool { problems.isEmpty }

        public var description: String {
            var lines = ["sale \(saleID): quantity \(quantity), persisted \(persisted) (\(ordersInDatabase) order rows)"]
            if let admittedInRedis {
                lines.append("  redis: admitted \(admittedInRedis), orders \(ordersInRedis ?? -1), stream \(streamLength ?? -1), pending \(pending ?? -1)")
            }
            lines += problems.map { "  problem: \($0)" } + repairs.map { "  repaired: \($0)" }
            if closed { lines.append("  closed: unsold units returned to the product") }
            if problems.isEmpty { lines.append("  consistent") }
            return lines.joined(separator: "\n")
        }
    }

    public func reconcileAll(repair: Bool, now: Date = Date()) async throws -> [Report] {
        var reports: [Report] = []
        for sale in try await store.openFlashSales() {
            reports.append(try await reconcile(saleID: sale.id, repair: repair, now: now))
        }
        return reports
    }

    public func reconcile(saleID: Int64, repair: Bool, now: Date = Date()) async throws -> Report {
        var report = Report(saleID: saleID)
        guard var sale = try await store.flashSale(id: saleID) else {
            report.problems.append("no such sale in the database")
            return report
        }
        report.quantity = sale.quantity
        report.persisted = sale.sold
        // The counters against the rows, read in one snapshot: quantity = remaining + held + paid +
        // refunded holds only if each counts what the rows say.
        if let tally = try await store.orderTally(saleID: saleID) {
            report.ordersInDatabase = tally.liveRows
            report.problems += tally.problems
        }
        var everythingPersisted = true
        if let redis, let gate {
            let keys = RedisKeys.sale(saleID)
            if try await !redis.exists(keys.meta) {
                if sale.closedAt == nil {
                    report.problems.append("the sale is missing from Redis")
                    if repair {
                        try await gate.prepare(sale)
                        report.repairs.append("loaded the sale into Redis from the database")
                    }
                }
            } else {
                let stock = min(max(Int(try await redis.getString(keys.stock) ?? "0") ?? 0, -sale.quantity), sale.quantity)
                let admitted = sale.quantity - stock
                report.admittedInRedis = admitted
                // Orders whose holds expired stay (a retry gets its order) but hold no unit.
                report.ordersInRedis = try await redis.hlen(keys.orders) - redis.scard(keys.released)
                report.streamLength = try await redis.xlen(keys.admitted)
                report.pending = try await redis.xpendingCount(keys.admitted, group: RedisKeys.persisterGroup)
                if stock < 0 { report.problems.append("Redis stock is negative (\(stock)): oversold") }
                if report.ordersInRedis != admitted { report.problems.append("Redis admitted \(admitted) but records \(report.ordersInRedis ?? 0) orders") }
                // Expiries lower the database's count before Redis's, admissions raise Redis's
                // first: only a count above Redis's both before and after reading Redis, with
                // nothing pending, says Redis lost data (deleting a live sale's keys would lose
                // what its stream still holds).
                let soldAfter = try await store.flashSale(id: saleID)?.sold ?? sale.sold
                if min(sale.sold, soldAfter) > admitted && report.pending == 0 {
                    report.problems.append("the database has \(min(sale.sold, soldAfter)) orders but Redis admitted only \(admitted): Redis lost data")
                    if repair {
                        try await redis.del(keys.all + [keys.released])
                        try await gate.prepare(sale)
                        report.repairs.append("rebuilt the sale in Redis from the database")
                    }
                } else if sale.sold < admitted {
                    everythingPersisted = false
                    if report.pending == 0 {
                        report.problems.append("\(admitted - sale.sold) admitted orders are acknowledged but not in the database, or expired and not given back")
                        if repair {
                            let replayed = try await replay(keys.admitted)
                            report.repairs.append("replayed the stream: \(replayed) orders written")
                            // An expirer killed between the database and Redis: give back what
                            // expired (each order once, so what was given back stays as it is).
                            let expired = try await store.allAdmittedOrders(saleID: saleID).filter(\.isExpired).map(\.orderID)
                            for start in stride(from: 0, to: expired.count, by: 1_000) {
                                try await gate.release(sale, expiredOrderIDs: Array(expired[start..<min(start + 1_000, expired.count)]))
                            }
                            if !expired.isEmpty { report.repairs.append("gave back the units of expired holds (\(expired.count) asked, each once)") }
                            everythingPersisted = try await store.flashSale(id: saleID)?.sold == gate.admittedCount(sale)
                        }
                    }
                }
            }
        }
        sale = try await store.flashSale(id: saleID) ?? sale
        if repair, everythingPersisted, sale.closedAt == nil, now >= sale.endsAt.addingTimeInterval(2) {
            report.closed = try await store.closeFlashSale(id: saleID, now: now)
            if report.closed, let redis { try await redis.srem(RedisKeys.flashSales, [String(saleID)]) }
        }
        if !report.problems.isEmpty { logger.warning("flash sale inconsistent", metadata: ["souk.sale_id": "\(saleID)", "report": "\(report)"]) }
        return report
    }

    /// Writes every entry of the stream to the database (idempotent); returns how many were new.
    func replay(_ stream: String) async throws -> Int {
        guard let redis else { return 0 }
        var written = 0
        var start = "-"
        while true {
            let page = try await redis.xrange(stream, from: start, to: "+", count: 1_000)
            let orders = page.compactMap { FlashSaleOrderPersister.order(from: $0, stream: stream) }
            written += try await store.persistAdmitted(orders)
            guard page.count == 1_000, let last = page.last else { return written }
            start = "(" + last.id
        }
    }
}

/// Runs the reconciler every `interval` (repairing), for `souk worker` and embedded mode.
public struct PeriodicReconciler: Service {
    let reconciler: FlashSaleReconciler
    let interval: Duration

    public init(reconciler: FlashSaleReconciler, interval: Duration = .seconds(30)) {
        self.reconciler = reconciler
        self.interval = interval
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    _ = try await reconciler.reconcileAll(repair: true)
                } catch {
                    reconciler.logger.warning("reconciliation failed", metadata: ["error": "\(String(reflecting: error))"])
                }
                try? await Task.sleep(for: interval)
            }
        }
    }
}
