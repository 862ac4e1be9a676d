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
}
