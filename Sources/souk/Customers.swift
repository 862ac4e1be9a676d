import ArgumentParser
import Foundation
import Logging
import NIOConcurrencyHelpers
import SoukServer
import SoukSQL

/// `souk customers`: customer accounts from the command line.
struct Customers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Customer accounts for load tests.",
        subcommands: [Mint.self]
    )

    /// `souk customers mint`: buyers for a benchmark, one `<customer id> <token>` line each on stdout.
    struct Mint: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make customers that cannot log in, each with a signed session token (for wrk and other load generators)."
        )
        @Option(help: "How many customers.") var count = 1_000
        @Option(help: "Hours the tokens work.") var hours = 24
        @OptionGroup var settings: SettingsOptions

        func run() async throws {
            guard (1...2_000_000).contains(count), (1...720).contains(hours) else {
                throw ValidationError("--count must be 1...2000000 and --hours 1...720")
            }
            let runID = String(UInt32.random(in: 0 ... .max), radix: 36)
            let shoppers = try await Shoppers.mint(count, emailPrefix: "mint-\(runID)", lifetime: .seconds(hours * 3_600), configuration: try settings.load())
            var output = ""
            output.reserveCapacity(shoppers.count * 140)
            for shopper in shoppers { output += "\(shopper.id) \(shopper.token)\n" }
            FileHandle.standardOutput.write(Data(output.utf8))
        }
    }
}

/// Buyers made in the configured database with signed tokens (see `CustomerTokens.mintShoppers`).
enum Shoppers {
    static func mint(_ count: Int, emailPrefix: String, lifetime: Duration, configuration: SoukConfiguration) async throws -> [(id: String, token: String)] {
        let made = NIOLockedValueBox<[(id: String, token: String)]>([])
        try await Backend.with(configuration, logger: Logger(label: "souk.customers")) { database in
            let tokens = try await CustomerTokens(store: SQLStorage(database: database), lifetime: lifetime)
            let shoppers = try await tokens.mintShoppers(count, emailPrefix: emailPrefix)
            made.withLockedValue { $0 = shoppers }
        }
        return made.withLockedValue { $0 }
    }
}
