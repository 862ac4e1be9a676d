import HummingbirdBcrypt
import NIOPosix
import SoukCore

/// bcrypt on NIO's blocking thread pool: a hash takes ~90 ms of CPU at cost 10 and must never
/// stall the cooperative pool that serves requests.
public struct BcryptPasswordHasher: PasswordHasher {
    let cost: UInt8
    let threadPool: NIOThreadPool

    public init(cost: UInt8 = 10, threadPool: NIOThreadPool = .singleton) {
        self.cost = cost
        self.threadPool = threadPool
    }

    public func hash(_ password: String) async throws -> String {
        let cost = cost
        return try await threadPool.runIfActive { Bcrypt.hash(password, cost: cost) }
    }

    public func verify(_ password: String, hash: String) async throws -> Bool {
        try await threadPool.runIfActive { Bcrypt.verify(password, hash: hash) }
    }
}
