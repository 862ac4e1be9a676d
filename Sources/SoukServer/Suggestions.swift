import Foundation
import NIOConcurrencyHelpers
import SoukCore

/// The autocomplete index of this process, rebuilt from the catalogue's names when older than
/// `maxAge`. A request never waits for a rebuild once the first index exists: it answers from the
/// current one while a single rebuild runs in the background.
final class Suggestions: Sendable {
    struct State {
        var index: SuggestionIndex?
        var builtAt = ContinuousClock.now
        var building = false
    }

    let search: any ProductSearch
    let maxAge: Duration
    /// Names taken into the index (newest products first).
    static let maxNames = 500_000
    private let state = NIOLockedValueBox(State())

    init(search: any ProductSearch, maxAge: Duration = .seconds(10)) {
        self.search = search
        self.maxAge = maxAge
    }

    func suggest(_ text: String, limit: Int) async throws -> [String] {
        let (index, rebuild) = state.withLockedValue { state -> (SuggestionIndex?, Bool) in
            let stale = state.index == nil || ContinuousClock.now - state.builtAt > maxAge
            let rebuild = stale && !state.building
            if rebuild { state.building = true }
            return (state.index, rebuild)
        }
        if let index {
            if rebuild { Task { try? await self.build() } }
            return index.suggest(text, limit: limit)
        }
        if rebuild { return try await build().suggest(text, limit: limit) }
        // Another request is building the first index: wait for it briefly rather than build twice.
        for _ in 0..<100 {
            try await Task.sleep(for: .milliseconds(20))
            if let index = state.withLockedValue({ $0.index }) { return index.suggest(text, limit: limit) }
        }
        return []
    }

    @discardableResult
    func build() async throws -> SuggestionIndex {
        do {
            let index = SuggestionIndex(names: try await search.suggestionNames(limit: Self.maxNames))
            state.withLockedValue { state in
                state.index = index
                state.builtAt = .now
                state.building = false
            }
            return index
        } catch {
            state.withLockedValue { $0.building = false }
            throw error
        }
    }
}
