import Foundation
import NIOCore

// Ports for answers given on the event loop that read the request, without a task (Souk's fast
// lanes): the hop to a task and back costs more than a small request itself. A backend that can
// reply on an event loop (Redis, on a connection of that loop) implements them; nil from either
// means "not this way now", and the caller takes the ordinary, suspending path.

/// Admissions for an event loop: the gate's decision made without a task (the Redis gate sends its
/// script on that loop's own connection and reads the reply there).
public protocol EventLoopAdmissionGate: Sendable {
    /// Nil when the gate cannot decide this way now; the future's nil when only the ordinary
    /// admission can decide this attempt (and it decides the same).
    func admit(_ sale: FlashSale, buyerID: String, requestKey: String, limits: [RateCheck], now: Date, on eventLoop: any EventLoop) -> EventLoopFuture<Admission?>?
}

/// Store pages read on an event loop, without a task (the Redis page cache, on that loop's own
/// connection).
public protocol EventLoopPageCache: Sendable {
    /// The page cached at the vendor's current version, or nil when there is none (the router then
    /// renders it). Nil instead of a future when the cache cannot read this way now.
    func currentPage(_ key: PageKey, on eventLoop: any EventLoop) -> EventLoopFuture<CachedPage?>?
}
