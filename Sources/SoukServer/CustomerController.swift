import Foundation
import Hummingbird
import SoukCore

/// Customer accounts in the JSON API: sign-up, sessions (signed tokens, ``CustomerTokens``) and the
/// signed-in customer. One account buys from every store.
struct CustomerController: Sendable {
    let services: SoukServices

    func addRoutes(to group: RouterGroup<SoukRequestContext>) {
        group.post("customers", use: signUp)
        group.post("customers/sessions", use: logIn)
        group.delete("customers/sessions", use: logOut)
        group.get("customers/me", use: me)
        group.get("customers/me/orders", use: orders)
        group.post("customers/me/verification", use: sendCode)
        group.post("customers/me/verification/confirm", use: confirmCode)
    }

    struct SignupInput: Decodable {
        let email: String
        let password: String
        let name: String
    }

    struct CustomerBody: Encodable {
        let id: String
        let email: String
        let name: String
        let createdAt: Date
        let verified: Bool

        init(_ customer: Customer) {
            id = customer.id
            email = customer.email
            name = customer.name
            createdAt = customer.createdAt
            verified = customer.verifiedAt != nil
        }
    }

    @Sendable func signUp(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let input = try await JSONResponse.decode(SignupInput.self, from: request, context: context)
        let signup = try CustomerSignup(email: input.email, password: input.password, name: input.name)
        try await services.rateGuard.check([(.signupPerAddress, services.rateGuard.clientAddress(request, context))])
        let customer = try await services.customerAccounts.signUp(signup)
        await Self.sendFirstCode(to: customer, services: services, context: context)
        return try JSONResponse.make(CustomerBody(customer), status: .created, headers: [.location: "/api/v1/customers/me"])
    }

    struct LoginInput: Decodable {
        let email: String
        let password: String
    }

    @Sendable func logIn(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let input = try await JSONResponse.decode(LoginInput.self, from: request, context: context)
        guard let customer = try await services.rateGuard.login(username: input.email, request: request, context: context, authenticate: {
            try await services.customerAccounts.authenticate(email: input.email, password: input.password)
        }) else { throw SoukError.unauthorized }
        let session = services.customerTokens.issue(for: customer)
        return try JSONResponse.make(APIController.TokenBody(token: session.token, expiresIn: services.customerTokens.lifetime.components.seconds), status: .created)
    }

    @Sendable func logOut(_ request: Request, context: SoukRequestContext) async throws -> Response {
        try await services.customerTokens.revoke(try context.requireCustomer())
        return Response(status: .noContent)
    }

    /// The customer, and the details of their latest store order (what a store's form fills in).
    struct MeBody: Encodable {
        struct Shipping: Encodable {
            let name: String
            let phone: String
            let address: String
        }

        let id: String
        let email: String
        let name: String
        let createdAt: Date
        let verified: Bool
        let shipping: Shipping?
    }

    @Sendable func me(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let identity = try context.requireCustomer()
        guard let customer = try await services.customerAccounts.customer(named: identity.customerID) else { throw SoukError.unauthorized }
        let shipping = try await services.storage.lastShippingContact(customerID: customer.id).map {
            MeBody.Shipping(name: $0.name, phone: $0.phone, address: $0.address)
        }
        return try JSONResponse.make(MeBody(id: customer.id, email: customer.email, name: customer.name, createdAt: customer.createdAt, verified: customer.verifiedAt != nil, shipping: shipping))
    }

    /// Every order of the customer in every store, newest first.
    @Sendable func orders(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let identity = try context.requireCustomer()
        let (filter, after, limit) = try OrderListAPI.query(request, owner: .customer(identity.customerID))
        let (orders, next) = try await OrderListAPI.page(services.storage, filter, after: after, limit: limit)
        return try JSONResponse.make(OrderListAPI.Page(orders: orders.map { OrderListAPI.Body($0) }, nextCursor: next))
    }

    /// A new account gets its code at once; mail that cannot go out now is not a failed sign-up
    /// (the customer asks for another code).
    static func sendFirstCode(to customer: Customer, services: SoukServices, context: SoukRequestContext) async {
        do {
            try await services.emailVerification.sendCode(to: customer)
        } catch {
            context.logger.warning("verification code not sent", metadata: ["error": "\(String(reflecting: error))"])
        }
    }

    struct CodeSentBody: Encodable {
        let verified: Bool
        let sentTo: String?
        let expiresAt: Date?
    }

    /// Mails a new code (the previous one stops working); 200 with `verified: true` when there is
    /// nothing to verify.
    @Sendable func sendCode(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let customer = try await signedInCustomer(context)
        if customer.verifiedAt != nil { return try JSONResponse.make(CodeSentBody(verified: true, sentTo: nil, expiresAt: nil)) }
        let expiresAt = try await services.emailVerification.sendRequestedCode(to: customer, rateGuard: services.rateGuard)
        return try JSONResponse.make(CodeSentBody(verified: false, sentTo: customer.email, expiresAt: expiresAt), status: .accepted)
    }

    struct CodeInput: Decodable {
        let code: String
    }

    struct VerifiedBody: Encodable {
        let verified: Bool
        let token: String
        let expiresIn: Int64
    }

    /// Checks the code; on success a new session token that says "verified" (sales for verified
    /// customers check the token, not the database, on every attempt).
    @Sendable func confirmCode(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let customer = try await signedInCustomer(context)
        let input = try await JSONResponse.decode(CodeInput.self, from: request, context: context)
        _ = try await services.emailVerification.confirm(customer, code: input.code)
        guard let verified = try await services.customerAccounts.customer(named: customer.id) else { throw SoukError.unauthorized }
        let session = services.customerTokens.issue(for: verified)
        return try JSONResponse.make(VerifiedBody(verified: true, token: session.token, expiresIn: services.customerTokens.lifetime.components.seconds))
    }

    private func signedInCustomer(_ context: SoukRequestContext) async throws -> Customer {
        let identity = try context.requireCustomer()
        guard let customer = try await services.customerAccounts.customer(named: identity.customerID) else { throw SoukError.unauthorized }
        return customer
    }
}
