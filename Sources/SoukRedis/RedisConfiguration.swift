import Foundation

/// Where Redis is and how to talk to it, read from `redis://[user:password@]host[:port][/db]`.
public struct RedisConfiguration: Sendable, Hashable {
    public var host: String
    public var port: Int
    public var username: String?
    public var password: String?
    public var database: Int
    /// Connections in the pool; each carries many pipelined callers.
    public var poolSize: Int = 4
    public var connectTimeout: Duration = .seconds(5)
    /// The default deadline of a command (blocking commands add their own block time).
    public var commandTimeout: Duration = .seconds(5)

    public init(host: String = "127.0.0.1", port: Int = 6379, username: String? = nil, password: String? = nil, database: Int = 0) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
    }

    public struct InvalidURL: Error, CustomStringConvertible {
        public let description: String
    }

    public init(url: String) throws {
        guard let components = URLComponents(string: url), components.scheme == "redis",
              let host = components.host, !host.isEmpty
        else { throw InvalidURL(description: "expected redis://[user:password@]host[:port][/db], got \(url)") }
        let path = components.path.drop { $0 == "/" }
        guard path.isEmpty || Int(path) != nil else { throw InvalidURL(description: "the database in \(url) must be a number") }
        self.init(
            host: host, port: components.port ?? 6379,
            username: components.user.flatMap { $0.isEmpty ? nil : $0.removingPercentEncoding },
            password: components.password?.removingPercentEncoding,
            database: Int(path) ?? 0
        )
    }
}
