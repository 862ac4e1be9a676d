import Foundation
import NIOCore
import PropertyBased
import RESP
import SoukCore
import SoukSQL
import Testing
@testable import SoukServer

/// Properties of every reader of client input, over generated values far beyond what examples
/// cover (the extremes of Int64 and Double, years from -999,999 to 999,999, arbitrary text): each
/// either gives the value exactly or refuses with a ``SoukError`` naming the field. A reader that
/// traps kills this test process, which fails the run just as loudly.
@Suite("Client input properties")
struct InputPropertyTests {
    /// Runs `body`, which may refuse its input only with a ``SoukError``; returns what it made.
    @discardableResult
    static func refusesOnlyWithSoukError<T>(_ what: String, _ body: () throws -> T) -> T? {
        do {
            return try body()
        } catch is SoukError {
            return nil
        } catch {
            Issue.record("\(what): \(type(of: error)) \(error) is not a SoukError (it would be a 500)")
            return nil
        }
    }

    /// One of `values`, at random.
    static func pick<T: Sendable>(_ values: [T]) -> Generator<T, Shrink.None<T?>> {
        Gen.element(of: values).map { $0! }
    }

    /// Any Int64, with the boundaries and small numbers as likely as the rest.
    static let extremeIntegers = Gen.int64().map { value -> Int64 in
        let edges: [Int64] = [.min, .min + 1, -1, 0, 1, 99_999_999_999, 100_000_000_000, .max - 1, .max]
        switch value & 3 {
        case 0: return edges[Int(UInt64(bitPattern: value >> 2) % UInt64(edges.count))]
        case 1: return value % 1_000
        default: return value
        }
    }

    static let numberText = pick(Array("0123456789.-+e ,")).string(of: 0...40)
    static let bytes = Gen.uint8()

    // MARK: Forms

    @Test func anAmountTypedIntoAFormIsExactOrAFieldError() async {
        await propertyCheck(count: 1_000, input: Gen.int64(in: 0 ... .max), Self.pick(["USD", "JPY", "KWD"])) { minor, code in
            let currency = Currency(code: code)!
            let scale = Int64(pow(10, Double(currency.minorDigits)))
            let fraction = String(minor % scale)
            let typed = currency.minorDigits == 0 ? "\(minor)" : "\(minor / scale)." + String(repeating: "0", count: currency.minorDigits - fraction.count) + fraction
            var errors: [FieldError] = []
            let form = try Form.parse("price=" + typed)
            #expect(form.price("price", currency: currency, errors: &errors) == minor, "\(typed) in \(code)")
            #expect(errors.isEmpty)
        }
        await propertyCheck(count: 1_000, input: Self.numberText) { typed in
            var errors: [FieldError] = []
            let form = try Form.parse("price=" + (typed.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""))
            if let value = form.price("price", currency: Currency(code: "USD"), errors: &errors) {
                #expect(value >= 0 && errors.isEmpty)
                let decimal = Decimal(string: typed.trimmingCharacters(in: .whitespaces))
                #expect(decimal.map { $0 * 100 == Decimal(value) } ?? false, "\(typed) read as \(value)")
            } else {
                #expect(!errors.isEmpty || typed.trimmingCharacters(in: .whitespaces).isEmpty, "\(typed): refused with a field error")
            }
            errors = []
            if let count = form.integer("price", errors: &errors) { #expect(Int64(typed.trimmingCharacters(in: .whitespaces)) == count) }
        }
    }

    @Test func anyFormBodyIsReadOrRefusedAsMalformed() async {
        await propertyCheck(count: 1_000, input: Self.bytes.array(of: 0...80)) { bytes in
            let text = String(decoding: bytes, as: UTF8.self)
            if let form = Self.refusesOnlyWithSoukError("form", { try Form.parse(text) }) {
                Self.refusesOnlyWithSoukError("product form") { try PagesController.productInput(form) }
            }
            Self.refusesOnlyWithSoukError("multipart") { try MultipartForm.parse(bytes, boundary: "b") }
        }
    }

    @Test func multipartFieldsComeBackAsSent() async {
        let value = Gen.letterOrNumber.string(of: 0...30)
        await propertyCheck(count: 300, input: value.array(of: 1...5), Self.bytes.array(of: 0...64)) { values, file in
            var body = ""
            for (index, text) in values.enumerated() {
                body += "--souk\r\nContent-Disposition: form-data; name=\"f\(index)\"\r\n\r\n\(text)\r\n"
            }
            var bytes = Array(body.utf8)
            bytes += Array("--souk\r\nContent-Disposition: form-data; name=\"image\"; filename=\"x.bin\"\r\n\r\n".utf8) + file + Array("\r\n--souk--\r\n".utf8)
            guard let parsed = Self.refusesOnlyWithSoukError("multipart", { try MultipartForm.parse(bytes, boundary: "souk") }) else {
                // A file that happens to hold the delimiter splits the part; nothing else may fail.
                #expect(String(decoding: file, as: UTF8.self).contains("--souk"), "a well-formed body was refused")
                return
            }
            for (index, text) in values.enumerated() { #expect(parsed.form["f\(index)"] == text) }
            if !String(decoding: file, as: UTF8.self).contains("--souk") { #expect(parsed.files["image"] == file) }
        }
    }

    // MARK: Dates

    @Test func aDateIsInTheAcceptedRangeOrAFieldErrorAndIsStoredWithoutTrapping() async {
        await propertyCheck(count: 1_000, input: Gen.int(in: -999_999...999_999), Gen.int(in: 1...12), Gen.int(in: 1...28), Gen.bool) { year, month, day, fraction in
            // Plain interpolation: String(format:) with %@ and Swift strings is not safe on Linux.
            func padded(_ value: Int, _ width: Int) -> String { String(repeating: "0", count: max(0, width - String(value).count)) + String(value) }
            let yearText = year < 0 ? "-" + padded(-year, 4) : padded(year, 4)
            let text = "\(yearText)-\(padded(month, 2))-\(padded(day, 2))T12:34:56\(fraction ? ".123" : "")Z"
            do {
                guard let date = try ClientDates.iso8601(text, field: "starts_at") else { Issue.record("no date"); return }
                #expect(ClientDates.contains(date), "\(text) accepted out of range")
                #expect((1970...9999).contains(year), "\(text) accepted")
                let _: SQL = "\(date)"  // bound as microseconds, as the stores do
            } catch let error as SoukError {
                #expect(error.fieldNames == ["starts_at"], "\(text): \(error)")
                if (1971...9998).contains(year) { Issue.record("\(text) refused though it is in range") }
            }
        }
        await propertyCheck(count: 1_000, input: Gen.double(in: -1e20...1e20)) { seconds in
            if let date = ClientDates.date(secondsSince1970: seconds) {
                #expect(ClientDates.contains(date))
            }
            #expect(Int64(saturating: seconds * 1_000_000) != 0 || abs(seconds) < 1e-6 || seconds.isNaN)
        }
    }

    @Test func aFlashSaleOrCouponFromAnyNumbersIsValidOrRefusedWithFields() async {
        let maybeInt = Self.extremeIntegers.optional()
        await propertyCheck(count: 1_000, input: maybeInt, maybeInt, Gen.int64(in: -5_000_000_000 ... 500_000_000_000), Gen.int64(in: -5_000_000_000 ... 500_000_000_000)) { quantity, limit, start, end in
            let starts = Date(timeIntervalSince1970: TimeInterval(start))
            let ends = Date(timeIntervalSince1970: TimeInterval(end))
            let formatter = ISO8601DateFormatter()
            Self.refusesOnlyWithSoukError("flash sale") {
                let draft = try FlashSaleDraft(
                    productID: 1, quantity: quantity.map { Int(clamping: $0) }, startsAt: try ClientDates.iso8601(formatter.string(from: starts), field: "starts_at"),
                    endsAt: try ClientDates.iso8601(formatter.string(from: ends), field: "ends_at"), perBuyerLimit: limit.map { Int(clamping: $0) })
                #expect(draft.quantity > 0 && draft.endsAt > draft.startsAt)
                let _: SQL = "\(draft.startsAt) \(draft.endsAt) \(draft.quantity)"
            }
            Self.refusesOnlyWithSoukError("coupon") {
                let draft = try CouponDraft(code: "SAVE", kind: quantity.map { $0 % 2 == 0 ? "percent" : "fixed" }, value: quantity, minimumOrderMinor: limit,
                                            maxUses: limit.map { Int(clamping: $0) }, expiresAt: try ClientDates.iso8601(formatter.string(from: ends), field: "expires_at"))
                let _: SQL = "\(draft.value) \(draft.minimumOrderMinor) \(draft.expiresAt ?? Date())"
            }
        }
    }

    // MARK: JSON bodies

    @Test func everyJSONBodyWithExtremeNumbersIsReadOrRefusedWithFields() async {
        let odd = ["1e308", "-0", "0.5", "1E2", "\"12\"", "null", "true", "[]", "18446744073709551616", "12.5", "-1e-9"]
        let number = zip(Self.extremeIntegers, Gen.double(in: -1e30...1e30), Gen.int(in: 0...5)).map { integer, double, kind -> String in
            switch kind {
            case 0, 1, 2: "\(integer)"
            case 3: "\(double)"
            default: odd[Int(UInt64(bitPattern: integer) % UInt64(odd.count))]
            }
        }
        await propertyCheck(count: 1_000, input: number.array(of: 6)) { numbers in
            let bodies: [(String, () throws -> Void)] = [
                (#"{"name":"Tea","price_minor":\#(numbers[0]),"currency":"USD","stock":\#(numbers[1]),"available":true}"#, {}),
                (#"{"customer":{"name":"C","phone":"5550100","address":"x"},"items":[{"product_id":\#(numbers[2]),"quantity":\#(numbers[3])}]}"#, {}),
                (#"{"buyer_id":"ann","items":[{"product_id":\#(numbers[4]),"quantity":\#(numbers[5])}]}"#, {}),
                (#"{"amount_minor":\#(numbers[0])}"#, {}),
            ]
            for (index, (text, _)) in bodies.enumerated() {
                let body = ByteBuffer(string: text)
                let outcome: Result<Void, any Error> = Result {
                    switch index {
                    case 0:
                        let input = try JSONResponse.decode(API.ProductInput.self, from: body)
                        let change = try input.newProduct()
                        let _: SQL = "\(change.priceMinor) \(change.stock.map(Int64.init))"
                    case 1: _ = try JSONResponse.decode(API.OrderInput.self, from: body).request()
                    case 2:
                        let input = try JSONResponse.decode(CheckoutController.CheckoutInput.self, from: body)
                        _ = try CheckoutRequest(buyerID: input.buyerId, items: input.items.map { ($0.productId, $0.quantity) }, couponCode: nil, idempotencyKey: nil)
                    default: _ = try JSONResponse.decode(CheckoutController.CreditInput.self, from: body)
                    }
                }
                if case .failure(let error) = outcome {
                    guard let error = error as? SoukError else { Issue.record("\(text): \(error) is not a SoukError"); continue }
                    if case .validationFailed(let fields) = error { #expect(!fields.isEmpty && fields.allSatisfy { !$0.field.isEmpty }, "\(text)") }
                    #expect(error.code != "malformed_request", "valid JSON with a bad value names its field: \(text) → \(error)")
                }
            }
        }
    }

    @Test func thePlainPurchaseReaderAgreesWithTheDecoder() async {
        let buyer = Self.pick(Array("abcXYZ019_.@+- \"\\/é\u{0}\u{1F}{}:,")).string(of: 0...20)
        let space = Self.pick(["", " ", "\n", "\t", "  "])
        await propertyCheck(count: 1_000, input: buyer, space, space) { name, before, after in
            let escaped = name.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            for text in [#"{"buyer_id":"\#(name)"}"#, "\(before){\(after)\"buyer_id\"\(before):\(after)\"\(escaped)\"\(before)}\(after)"] {
                let body = ByteBuffer(string: text)
                let decoded = try? JSONResponse.decode(FlashSaleController.PurchaseInput.self, from: body).buyerId
                if let plain = FlashSaleController.PurchaseInput.plain(body) {
                    #expect(plain == decoded, "\(text.debugDescription): plain \(plain), decoder \(decoded ?? "refused")")
                }
                Self.refusesOnlyWithSoukError("purchase") { try BuyerID.validated(try FlashSaleController.PurchaseInput.buyerID(in: body)) }
            }
        }
    }

    // MARK: Query strings and settings

    @Test func anySearchQueryIsReadOrRefusedWithEachFieldOnce() async {
        let key = Self.pick(["q", "vendor", "min_price", "max_price", "in_stock", "limit", "offset", "other"])
        let words = ["true", "false", "maybe", "", "abc", "%00", "é"]
        let value = zip(Self.extremeIntegers, Self.numberText, Gen.int(in: 0...2)).map { integer, text, kind -> String in
            switch kind {
            case 0: "\(integer)"
            case 1: text
            default: words[Int(UInt64(bitPattern: integer) % UInt64(words.count))]
            }
        }
        await propertyCheck(count: 1_000, input: key.array(of: 0...6), value.array(of: 6)) { keys, values in
            let pairs = keys.enumerated().map { (key: Substring($0.element), value: Substring(values[$0.offset])) }
            do {
                let query = try SearchController.query(pairs)
                #expect(query.limit >= 0 && query.offset >= 0)
            } catch let error as SoukError {
                guard case .validationFailed(let fields) = error else { Issue.record("\(error)"); return }
                #expect(Set(fields.map(\.field)).count == fields.count, "each field once: \(fields)")
            } catch {
                Issue.record("\(error) is not a SoukError")
            }
        }
    }

    @Test func settingsAndTimesParseOrAreRefused() async {
        let text = Self.pick(Array("0123456789smhd/=,_abcloginp .-")).string(of: 0...24)
        await propertyCheck(count: 1_500, input: text) { text in
            if let duration = Duration.parsing(text) { #expect(duration >= .zero) }
            if let policy = RateLimitPolicy.parse(text) { #expect(policy.limits.values.allSatisfy { $0.count > 0 && $0.intervalMilliseconds > 0 }) }
            if let limit = RateLimit(parsing: text) { #expect(limit.count > 0) }
            if let at = PriceRows.timestamp(text) { #expect((0...253_402_300_799_000).contains(at)) }
        }
    }

    // MARK: Idempotency

    @Test func aCheckoutsFingerprintIsItsContentWhateverTheOrderOfItems() async {
        let item = zip(Gen.int64(in: 1...50), Gen.int(in: 1...5))
        await propertyCheck(count: 500, input: item.array(of: 1...6)) { items in
            guard let request = try? CheckoutRequest(buyerID: "ann", items: items.map { ($0.0, $0.1) }, couponCode: "save", idempotencyKey: "k") else { return }
            let shuffled = try CheckoutRequest(buyerID: "ann", items: items.reversed().map { ($0.0, $0.1) }, couponCode: " SAVE ", idempotencyKey: "k")
            #expect(request.fingerprint == shuffled.fingerprint)
            var more = items
            more[0].1 += 1
            if let other = try? CheckoutRequest(buyerID: "ann", items: more.map { ($0.0, $0.1) }, couponCode: "save", idempotencyKey: "k") {
                #expect(other.fingerprint != request.fingerprint, "another quantity is another request")
            }
        }
    }

    // MARK: RESP

    @Test func aCommandIsDecodedAsSentAndAnyBytesAreReadOrRefused() async {
        await propertyCheck(count: 1_000, input: Self.bytes.array(of: 0...40).array(of: 1...6)) { arguments in
            var buffer = ByteBuffer()
            RESPCommand(arguments: arguments.map { ByteBuffer(bytes: $0) }).encode(into: &buffer)
            let token = try #require(try RESPToken.read(from: &buffer))
            #expect(token.value.elements?.map { $0.string.map { Array($0.utf8) } ?? [] }.count == arguments.count)
            if case .array(let elements) = token.value {
                for (element, argument) in zip(elements, arguments) {
                    if case .bulkString(let bytes) = element { #expect(Array(bytes.readableBytesView) == argument) } else { Issue.record("not a bulk string") }
                }
            }
            #expect(buffer.readableBytes == 0)
        }
        let respByte = Self.pick(Array("+-:$*%~>,#_(=!\r\n0123456789-abc".utf8))
        await propertyCheck(count: 1_500, input: respByte.array(of: 0...60)) { bytes in
            var buffer = ByteBuffer(bytes: bytes)
            while let token = try? RESPToken.read(from: &buffer) {
                _ = token.value.string
                _ = token.value.elements?.count
            }
        }
    }
}

extension SoukError {
    /// The fields a validation error names (empty for any other error).
    var fieldNames: [String] {
        if case .validationFailed(let fields) = self { return fields.map(\.field) }
        return []
    }
}
