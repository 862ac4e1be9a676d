/// Every Redis key Souk uses, built in one place. Keys of one vendor share the hash tag
/// `{store:ID}` so that they live on one Redis Cluster slot.
public enum RedisKeys {
    public static let prefix = "souk:"

    /// The vendor's store-page version (INCR on every committed change; no expiry).
    public static func storeVersion(_ vendorID: Int64) -> String { "\(prefix){store:\(vendorID)}:version" }

    /// The latest rendering of a page, with the version it was rendered at inside; expires with
    /// the page cache's time to live.
    public static func storePage(_ vendorID: Int64, variant: String) -> String {
        "\(prefix){store:\(vendorID)}:page:\(variant)"
    }

    /// Pub/sub channel on which instances announce invalidations (payload: the vendor id).
    public static let storeInvalidations = "\(prefix)store-invalidations"
    /// Pub/sub channel on which the release of expired holds is announced (payload: the sale id):
    /// every instance forgets that the sale was sold out.
    public static let saleReleases = "\(prefix)sale-releases"

    /// The keys of one flash sale, all under the hash tag `{sale:ID}` so that the admission script
    /// touches one Redis Cluster slot.
    public struct Sale: Sendable {
        public let id: Int64
        var tag: String { "\(prefix){sale:\(id)}" }
        /// Hash: starts, ends (ms), limit, quantity.
        public var meta: String { "\(tag):meta" }
        /// Integer: units left.
        public var stock: String { "\(tag):stock" }
        /// Hash: buyer → units admitted.
        public var buyers: String { "\(tag):buyers" }
        /// Hash: "buyer|idempotency key" → order id.
        public var orders: String { "\(tag):orders" }
        /// Stream of admitted orders, consumed by the persisting workers. Never trimmed while the sale is open.
        public var admitted: String { "\(tag):admitted" }
        /// Stream of entries that could not be persisted, with the reason.
        public var deadLetters: String { "\(tag):dead" }
        /// Set of the admitted entries already dead-lettered (each is moved once).
        public var deadLetterIDs: String { "\(tag):dead-ids" }
        public var all: [String] { [meta, stock, buyers, orders, admitted] }
        /// Set: the orders whose expired holds gave their units back (each gives one, once).
        public var released: String { "\(tag):released" }
        /// A purchase rate limit's next arrival time (GCRA) for this sale, counted by the admission
        /// script in the sale's slot; expires when it no longer matters.
        public func rateLimit(_ key: String) -> String { "\(tag):rate:\(key)" }

        public init(id: Int64) {
            self.id = id
        }

        /// The sale whose ``admitted`` stream this is, or nil for any other key.
        public init?(admittedStream key: String) {
            let head = "\(prefix){sale:", tail = "}:admitted"
            guard key.hasPrefix(head), key.hasSuffix(tail), let id = Int64(key.dropFirst(head.count).dropLast(tail.count)) else { return nil }
            self.id = id
        }
    }

    public static func sale(_ id: Int64) -> Sale { Sale(id: id) }

    /// Set of the ids of sales whose admitted streams the workers read.
    public static let flashSales = "\(prefix)flash-sales"

    /// Consumer group of the persisting workers on every admitted stream.
    public static let persisterGroup = "persisters"

    /// Pub/sub channel on which saga runners announce decided checkouts (payload: the order id).
    public static let checkoutResults = "\(prefix)checkout-results"

    /// The price log: a stream of published tick chunks (fields source, interval, ticks), and the
    /// producers' checkpoints (hash: source → interval start in ms). Tagged `{feed}` so that the
    /// publishing script touches one Cluster slot.
    public static let feedLog = "\(prefix){feed}:log"
    public static let feedCheckpoints = "\(prefix){feed}:checkpoints"

    /// Consumer group of the workers that apply the price log.
    public static let feedGroup = "appliers"

    /// A rate-limited key's next arrival time (GCRA), expiring when it no longer matters. One tag
    /// for all, so that a request's several limits are checked in one script.
    public static func rateLimit(_ key: String) -> String { "\(prefix){rate}:\(key)" }

    /// A feed item's price list: a sorted set scored by tick time (ms), members `at:price_minor`.
    public static func priceList(_ item: String) -> String { "\(prefix)price:\(item)" }

    /// The job queue, all under the hash tag `{jobs}` so its scripts touch one Cluster slot.
    public enum Jobs {
        /// Stream of due jobs (field `id`), read by the `job-workers` group.
        public static let queue = "\(prefix){jobs}:queue"
        /// Sorted set of jobs waiting for a retry, scored by when they are due (ms).
        public static let delayed = "\(prefix){jobs}:delayed"
        /// Hashes by job id: kind, payload, attempts so far.
        public static let kinds = "\(prefix){jobs}:kind"
        public static let payloads = "\(prefix){jobs}:payload"
        public static let attempts = "\(prefix){jobs}:attempts"
        /// Hash of dead jobs: id → "failed-at-ms reason".
        public static let dead = "\(prefix){jobs}:dead"
        public static let group = "job-workers"
        public static var all: [String] { [queue, delayed, kinds, payloads, attempts, dead] }
    }

    /// A login session by token hash; expires with the session.
    public static func session(_ tokenHash: String) -> String { "\(prefix)session:\(tokenHash)" }
}
