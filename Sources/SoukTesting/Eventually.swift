/// Polls `condition` every 20 ms until it holds or `limit` has passed, and says whether it held.
/// The limit is generous: a machine the whole suite keeps busy slows the roles under test, and a
/// healthy run ends the wait within milliseconds. For what a background role does by itself (a
/// runner releasing a charge, an event arriving), never for a fixed sleep.
public func eventually(within limit: Duration = .seconds(30), _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + limit
    while !(try await condition()) {
        guard ContinuousClock.now < deadline else { return false }
        try await Task.sleep(for: .milliseconds(20))
    }
    return true
}
