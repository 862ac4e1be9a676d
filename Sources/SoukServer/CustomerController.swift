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

        init(_ customer: Customer) {
            id = customer.id
            email = customer.email
            name = customer.name
            createdAt = customer.createdAt
        }
    }

    @Sendable func signUp(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let input = try await JSONResponse.decode(SignupInput.self, from: request, context: context)
        let signup = try CustomerSignup(email: input.email, password: input.password, name: input.name)
        try await services.rateGuard.check([(.signupPerAddress, services.rateGuard.clientAddress(request, context))])
        let customer = try await services.customerAccounts.signUp(signup)
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
        let shipping: Shipping?
    }

    @Sendable func me(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let identity = try context.requireCustomer()
        guard let customer = try await services.customerAccounts.customer(named: identity.customerID) else { throw SoukError.unauthorized }
        let shipping = try await services.storage.lastShippingContact(customerID: customer.id).map {
            MeBody.Shipping(name: $0.name, phone: $0.phone, address: $0.address)
        }
        return try JSONResponse.make(MeBody(id: customer.id, email: customer.email, name: customer.name, createdAt: customer.createdAt, shipping: shipping))
    }

    /// Every order of the customer in every store, newest first.
    @Sendable func orders(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let identity = try context.requireCustomer()
        let (filter, after, limit) = try OrderListAPI.query(request, owner: .customer(identity.customerID))
        let (orders, next) = try await OrderListAPI.page(services.storage, filter, after: after, limit: limit)
        return try JSONResponse.make(OrderListAPI.Page(orders: orders.map { OrderListAPI.Body($0) }, nextCursor: next))
    }
}
