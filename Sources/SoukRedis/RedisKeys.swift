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

    /// A login session by token hash; expires with the session.
    public static func session(_ tokenHash: String) -> String { "\(prefix)session:\(tokenHash)" }
}
