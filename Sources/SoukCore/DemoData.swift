/// The demo store a fresh embedded Souk starts with: vendor `demo` / `demo1234` and its products.
public enum DemoData {
    public static let username = "demo"
    public static let password = "demo1234"

    static let products: [(String, String, Int64, Int)] = [
        ("Dark chocolate bar", "70% cacao, single origin, 100 g.", 349, 120),
        ("Milk chocolate bar", "Creamy milk chocolate, 100 g.", 299, 150),
        ("Hazelnut spread", "Roasted hazelnuts and cocoa, 350 g jar.", 649, 60),
        ("Espresso beans", "Dark roast whole beans, 1 kg.", 1899, 40),
        ("Green tea", "Loose-leaf sencha, 200 g tin.", 1299, 35),
        ("Masala chai", "Black tea with cardamom and ginger, 250 g.", 899, 50),
        ("Saffron", "Hand-picked threads, 1 g.", 1499, 25),
        ("Argan oil", "Cold-pressed culinary argan oil, 250 ml.", 2199, 30),
        ("Olive oil", "Extra virgin, first cold press, 1 l.", 1599, 45),
        ("Dates", "Medjool dates, 500 g box.", 1099, 70),
        ("Ceramic tagine", "Hand-painted, serves four.", 4999, 12),
        ("Copper coffee pot", "Hammered copper cezve, 350 ml.", 2999, 15),
        ("Linen tea towel", "Stonewashed linen, 50 × 70 cm.", 1299, 80),
        ("Beeswax candle", "Hand-poured, burns 40 hours.", 1599, 40),
        ("Leather notebook", "A5, refillable, 120 pages.", 2499, 25),
        ("Fountain pen", "Steel nib, medium.", 3499, 20),
        ("Wool scarf", "Merino wool, 180 cm.", 3999, 18),
        ("Woven basket", "Palm leaf market basket.", 2799, 22),
        ("Rose water", "Distilled, 250 ml.", 799, 55),
        ("Spice sampler", "Six spices in glass jars.", 2299, 0),
    ]

    /// The demo product whose price follows the simulated market's first item.
    static let followingProduct = "Saffron"

    /// Demo customers (`user1@example.com` … with the demo password) and the store credit the demo
    /// store gave them, for the checkout and `POST /api/v1/buy` flows.
    public static let buyers: [(String, Int64)] = [
        ("user1@example.com", 50_000), ("user2@example.com", 250_000), ("user3@example.com", 1_000_000), ("user4@example.com", 2_000), ("user5@example.com", 0),
    ]

    /// Seeds the demo vendor, its products and the demo buyers' credit unless the demo vendor
    /// already exists; true when it seeded.
    @discardableResult
    public static func seed(accounts: VendorAccounts, customers: CustomerAccounts? = nil, storage: any SoukStorage, wallets: (any CheckoutStore)? = nil) async throws -> Bool {
        if try await storage.vendor(username: username) != nil { return false }
        let signup = try VendorSignup(username: username, password: password, storeName: "Demo Souk")
        let vendor: Vendor
        do {
            vendor = try await accounts.signUp(signup)
        } catch SoukError.usernameTaken {
            return false  // another process seeded it first
        }
        for (name, description, price, stock) in products {
            let change = try ProductChange.newProduct(
                name: name, description: description, priceMinor: price, currency: "USD", stock: stock,
                available: stock > 0, priceFeedItem: name == followingProduct ? "SIM-0001" : nil
            )
            _ = try await storage.createProduct(vendorID: vendor.id, change)
        }
        for (email, credit) in buyers {
            guard let customers else { break }
            let customer: Customer
            do {
                customer = try await customers.signUp(try CustomerSignup(email: email, password: password, name: "Demo \(email.prefix { $0 != "@" })"))
            } catch SoukError.emailTaken {
                guard let existing = try await customers.customer(named: email) else { continue }
                customer = existing
            }
            if credit > 0 { _ = try await wallets?.credit(buyerID: customer.id, amountMinor: credit, by: vendor.id) }
        }
        return true
    }
}
