import Foundation
import SoukSQL
import Testing

@Suite("SQL statements")
struct SQLTests {
    @Test func interpolationBindsValuesInsteadOfSplicingThem() {
        let name = "x'); DROP TABLE vendors; --"
        let sql: SQL = "SELECT id FROM vendors WHERE username = \(name) AND id > \(Int64(3))"
        #expect(sql.text == "SELECT id FROM vendors WHERE username = $1 AND id > $2")
        #expect(sql.binds == [.text(name), .int(3)])
    }

    @Test func appendRenumbersParameters() {
        var sql: SQL = "INSERT INTO t VALUES (\(1), \(2))"
        for value in 3...11 { sql.append(", (\(value), \(value * 10))") }
        #expect(sql.binds.count == 20)
        #expect(sql.text.hasSuffix("($19, $20)"))
        #expect(sql.text.contains("($11, $12)"))
        #expect(sql.binds[19] == .int(110))
    }

    @Test func optionalValuesBindAsNull() {
        let missing: String? = nil
        let sql: SQL = "UPDATE t SET a = COALESCE(CAST(\(missing) AS TEXT), a)"
        #expect(sql.binds == [.null])
    }
}
