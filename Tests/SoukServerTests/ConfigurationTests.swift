import Foundation
import SoukServer
import Testing

@Suite("Configuration")
struct ConfigurationTests {
    @Test func defaultsServeTheEmbeddedStore() throws {
        let configuration = try SoukConfiguration.load(environment: [:])
        #expect(configuration.host == "127.0.0.1" && configuration.port == 8080)
        #expect(configuration.database == .sqlite(path: "./souk-data/souk.sqlite"))
        #expect(configuration.redisURL == nil && configuration.logLevel == .info && configuration.cookies == .auto)
    }

    @Test func flagsOverrideTheEnvironment() throws {
        let configuration = try SoukConfiguration.load(
            environment: ["SOUK_HTTP_PORT": "9000", "SOUK_DATA_DIR": "/var/souk", "SOUK_DATABASE_URL": "postgres://souk@db:5432/souk"],
            flags: ["SOUK_HTTP_PORT": "9100", "SOUK_LOG_LEVEL": "DEBUG"]
        )
        #expect(configuration.port == 9100 && configuration.dataDirectory == "/var/souk" && configuration.logLevel == .debug)
        #expect(configuration.database == .postgres(url: "postgres://souk@db:5432/souk"))
        let sqlite = try SoukConfiguration.load(environment: ["SOUK_DATABASE_URL": "sqlite:///tmp/x.sqlite"])
        #expect(sqlite.database == .sqlite(path: "/tmp/x.sqlite"))
    }

    @Test func everyInvalidSettingIsReportedAtOnce() {
        #expect {
            try SoukConfiguration.load(environment: [
                "SOUK_HTTP_HOST": "bad host", "SOUK_HTTP_PORT": "-1", "SOUK_DATABASE_URL": "postgres://nohost",
                "SOUK_REDIS_URL": "redis://", "SOUK_LOG_LEVEL": "chatty", "SOUK_SECURE_COOKIES": "sometimes",
            ])
        } throws: { error in
            let problems = (error as? SoukConfiguration.Invalid)?.problems ?? []
            let names = ["SOUK_HTTP_HOST", "SOUK_HTTP_PORT", "SOUK_DATABASE_URL", "SOUK_REDIS_URL", "SOUK_LOG_LEVEL", "SOUK_SECURE_COOKIES"]
            return problems.count == names.count && zip(problems, names).allSatisfy { $0.hasPrefix($1) }
        }
    }

    @Test func databaseConnections() throws {
        #expect(try SoukConfiguration.load(environment: [:]).databaseConnections == 20)
        #expect(try SoukConfiguration.load(environment: ["SOUK_DATABASE_CONNECTIONS": "40"]).databaseConnections == 40)
        #expect(try SoukConfiguration.load(environment: ["SOUK_DATABASE_CONNECTIONS": "8"], flags: ["SOUK_DATABASE_CONNECTIONS": "6"]).databaseConnections == 6)
        for bad in ["1", "many", "1001"] {
            #expect {
                try SoukConfiguration.load(environment: ["SOUK_DATABASE_CONNECTIONS": bad])
            } throws: { error in
                (error as? SoukConfiguration.Invalid)?.problems.first?.hasPrefix("SOUK_DATABASE_CONNECTIONS") == true
            }
        }
    }

    @Test func priceFeedSettings() throws {
        let defaults = try SoukConfiguration.load(environment: [:])
        #expect(defaults.feedSource == .simulated && defaults.feedInterval == .seconds(60) && defaults.feedItems == 20)
        let set = try SoukConfiguration.load(environment: ["SOUK_FEED_SOURCE": "http://prices.local:8081/now", "SOUK_FEED_INTERVAL": "1s", "SOUK_FEED_ITEMS": "10000"])
        #expect(set.feedSource == .http(URL(string: "http://prices.local:8081/now")!) && set.feedInterval == .seconds(1) && set.feedItems == 10_000)
        #expect(try SoukConfiguration.load(environment: ["SOUK_FEED_SOURCE": "file:///tmp/replay.csv"]).feedSource == .file(path: "/tmp/replay.csv"))
        #expect {
            try SoukConfiguration.load(environment: ["SOUK_FEED_SOURCE": "ftp://x", "SOUK_FEED_INTERVAL": "1ms", "SOUK_FEED_ITEMS": "0"])
        } throws: { error in
            let problems = (error as? SoukConfiguration.Invalid)?.problems ?? []
            return problems.count == 3 && zip(problems, ["SOUK_FEED_SOURCE", "SOUK_FEED_INTERVAL", "SOUK_FEED_ITEMS"]).allSatisfy { $0.hasPrefix($1) }
        }
    }

    @Test func outsideServicesMayBeCalledOverHTTPS() throws {
        let set = try SoukConfiguration.load(environment: [
            "SOUK_VERIFIER": "https://verify.example.com/check", "SOUK_FEED_SOURCE": "https://prices.example.com/now", "SOUK_CA_FILE": #filePath,
        ])
        #expect(set.verifierURL == URL(string: "https://verify.example.com/check") && set.feedSource == .http(URL(string: "https://prices.example.com/now")!))
        #expect(set.caFile == #filePath)
        #expect {
            try SoukConfiguration.load(environment: ["SOUK_VERIFIER": "ftp://verify.example.com", "SOUK_CA_FILE": "/no/such/ca.pem"])
        } throws: { error in
            let problems = (error as? SoukConfiguration.Invalid)?.problems ?? []
            return problems.count == 2 && zip(problems, ["SOUK_VERIFIER", "SOUK_CA_FILE"]).allSatisfy { $0.hasPrefix($1) }
        }
    }

    @Test func theReadmeTableListsEverySetting() throws {
        let readme = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../README.md")
        let text = try String(contentsOf: readme, encoding: .utf8)
        for setting in SoukConfiguration.settings {
            #expect(text.contains("| `\(setting.environment)` | `\(setting.flag)` |"), "README.md lacks \(setting.environment)")
        }
    }
}
