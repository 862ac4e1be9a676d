import ArgumentParser
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import SoukCore
import SoukServer
import SoukSQL
import SoukWorkers

/// `souk loadtest …`: Souk's own load generator, for scenarios wrk cannot check.
struct LoadTest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loadtest", abstract: "Load generators with a verdict.", subcommands: [FlashSaleLoad.self])
}

/// Fires purchase attempts at a flash sale from many buyers over keep-alive connections, waits until
/// the admitted orders are persisted, and checks the result: nothing oversold, no duplicate, none lost.
struct FlashSaleLoad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "flash-sale", abstract: "Storm a flash sale and check the outcome.")

    @Option(help: "Souk's base URL.") var url = "http://127.0.0.1:8080"
    @Option(help: "The sale id.") var sale: Int64
    @Option(help: "Distinct buyers.") var buyers = 10_000
    @Option(help: "Attempts per buyer (retries use the same buyer).") var attemptsPerBuyer = 1
    @Option(help: "Connections kept open at once.") var concurrency = 256
    @Option(help: "The vendor's API token, to verify the persisted orders (recommended). Write --token=T: a token may begin with '-'.") var token: String?
    @Option(help: "Seconds to wait for persistence.") var persistTimeout = 60
    /// The database the buyers are made in (the same settings as `souk serve`).
    @OptionGroup var settings: SettingsOptions

    func run() async throws {
        guard let base = URL(string: url), let host = base.host else { throw ValidationError("--url must be like http://127.0.0.1:8080") }
        let port = base.port ?? 80
        guard (1...1_000_000).contains(buyers), (1...1_000).contains(attemptsPerBuyer), (1...10_000).contains(concurrency) else {
            throw ValidationError("--buyers must be 1...1000000, --attempts-per-buyer 1...1000, --concurrency 1...10000")
        }
        let total = buyers * attemptsPerBuyer
        let runID = String(UInt32.random(in: 0 ... .max), radix: 36)
        let before = try await Self.getJSON(host: host, port: port, path: "/api/v1/flash-sales/\(sale)")
        guard let quantity = before["quantity"] as? Int else { throw ValidationError("sale \(sale) not found at \(url)") }

        let shoppers = try await Shoppers.mint(buyers, emailPrefix: "lt-\(runID)", lifetime: .seconds(3_600), configuration: try settings.load())
        guard !shoppers.isEmpty else { throw ValidationError("no buyer could be made") }
        let results = LoadResults()
        let next = NIOLockedValueBox(0)
        let started = ContinuousClock.now
        let progress = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(250))
                Self.printProgress(done: results.count, total: total, started: started)
            }
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<min(concurrency, total) {
                group.addTask {
                    let connection = try await HTTPLoadConnection.connect(host: host, port: port)
                    defer { connection.close() }
                    while true {
                        let index = next.withLockedValue { value -> Int in
                            defer { value += 1 }
                            return value
                        }
                        guard index < total else { return }
                        let buyer = shoppers[index % shoppers.count]
                        let body = #"{"buyer_id":"\#(buyer.id)"}"#
                        let sent = ContinuousClock.now
                        let response = try await connection.send(method: .POST, path: "/api/v1/flash-sales/\(sale)/purchases", host: host, body: body, token: buyer.token)
                        results.record(status: response.status, body: response.body, latency: ContinuousClock.now - sent)
                    }
                }
            }
            try await group.waitForAll()
        }
        progress.cancel()
        let elapsed = ContinuousClock.now - started
        Self.printProgress(done: results.count, total: total, started: started)
        print("")

        let admitted = results.orderIDs
        var persisted: [String] = []
        var verdict = "PASS"
        if let token {
            let deadline = ContinuousClock.now + .seconds(persistTimeout)
            var stats: [String: Any] = [:]
            repeat {
                stats = try await Self.getJSON(host: host, port: port, path: "/api/v1/flash-sales/\(sale)/stats", token: token)
                if (stats["pending"] as? Int) == 0 { break }
                try await Task.sleep(for: .milliseconds(100))
            } while ContinuousClock.now < deadline
            var cursor = ""
            repeat {
                let page = try await Self.getJSON(host: host, port: port, path: "/api/v1/flash-sales/\(sale)/orders?limit=1000\(cursor.isEmpty ? "" : "&cursor=\(cursor)")", token: token)
                persisted += (page["orders"] as? [[String: Any]] ?? []).compactMap { $0["order_id"] as? String }
                cursor = page["next_cursor"] as? String ?? ""
            } while !cursor.isEmpty
        }
        let latencies = results.sortedLatencies
        func percentile(_ p: Double) -> String {
            guard !latencies.isEmpty else { return "-" }
            let value = latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))]
            return String(format: "%.2f ms", Double(value.components.attoseconds) / 1e15 + Double(value.components.seconds) * 1_000)
        }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let duplicates = persisted.count - Set(persisted).count
        let oversold = max(0, Set(persisted).count - quantity, admitted.count - quantity)
        let lost = token == nil ? 0 : admitted.subtracting(persisted).count
        print("""
            attempts     \(total) in \(String(format: "%.2f", seconds)) s: \(String(format: "%.0f", Double(total) / seconds)) attempts/s, p50 \(percentile(0.5)), p99 \(percentile(0.99))
            answers      \(results.statusSummary)
            admitted     \(admitted.count) distinct orders (quantity \(quantity))
            """)
        if token != nil {
            print("persisted    \(Set(persisted).count)")
            print("duplicates   \(duplicates)")
            print("lost         \(lost) (admitted but not persisted)")
        } else {
            print("persisted    (pass --token=T to verify persisted orders)")
        }
        print("oversold     \(oversold)")
        if oversold > 0 || duplicates > 0 || lost > 0 || results.errors > 0 { verdict = "FAIL" }
        print("verdict      \(verdict)")
        if verdict != "PASS" { throw ExitCode(1) }
    }

    static func printProgress(done: Int, total: Int, started: ContinuousClock.Instant) {
        let width = 30
        let filled = total == 0 ? width : width * min(done, total) / total
        let elapsed = ContinuousClock.now - started
        let seconds = max(0.001, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
        let line = "\r[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] \(done)/\(total) \(Int(Double(done) / seconds))/s"
        FileHandle.standardError.write(Data(line.utf8))
    }

    static func getJSON(host: String, port: Int, path: String, token: String? = nil) async throws -> [String: Any] {
        let connection = try await HTTPLoadConnection.connect(host: host, port: port)
        defer { connection.close() }
        let response = try await connection.send(method: .GET, path: path, host: host, body: nil, token: token)
        return (try? JSONSerialization.jsonObject(with: Data(response.body.utf8))) as? [String: Any] ?? [:]
    }
}

/// Everything the attempts answered, collected from many connections.
final class LoadResults: @unchecked Sendable {
    private let lock = NSLock()
    private var statuses: [Int: Int] = [:]
    private var codes: [String: Int] = [:]
    private var orders: Set<String> = []
    private var latencies: [Duration] = []
    private(set) var errors = 0

    func record(status: Int, body: String, latency: Duration) {
        let json = (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any]
        lock.withLock {
            statuses[status, default: 0] += 1
            latencies.append(latency)
            if status == 202, let order = json?["order_id"] as? String {
                orders.insert(order)
            } else if let code = (json?["error"] as? [String: Any])?["code"] as? String {
                codes[code, default: 0] += 1
            }
            if status >= 500 { errors += 1 }
        }
    }

    var count: Int { lock.withLock { latencies.count } }
    var orderIDs: Set<String> { lock.withLock { orders } }
    var sortedLatencies: [Duration] { lock.withLock { latencies.sorted() } }

    var statusSummary: String {
        lock.withLock {
            (statuses.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" } + codes.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" })
                .joined(separator: ", ")
        }
    }
}

