/// Autocomplete over the words of the catalogue's product names, in memory: a sorted vocabulary
/// answers prefixes by binary search, and a table of one-letter deletions (the "symmetric delete"
/// method) finds words within a small edit distance of a typo without scanning the vocabulary.
public struct SuggestionIndex: Sendable {
    /// Words, sorted, with how many product names contain them.
    let words: [String]
    let counts: [Int]
    /// A word with one letter deleted (or the word itself) → indexes into `words`.
    let deletions: [String: [Int32]]

    public static let empty = SuggestionIndex(names: [])

    /// Builds the index from product names (each word counted once per name).
    public init(names: some Sequence<String>) {
        var frequency: [String: Int] = [:]
        for name in names {
            // Numbers (sizes, model numbers) are not worth completing and would swell the index.
            for word in Set(SearchQuery.terms(of: name)) where word.count >= 2 && !word.allSatisfy(\.isNumber) {
                frequency[word, default: 0] += 1
            }
        }
        let sorted = frequency.keys.sorted()
        words = sorted
        counts = sorted.map { frequency[$0]! }
        var deletions: [String: [Int32]] = [:]
        for (index, word) in sorted.enumerated() where word.count <= 24 {
            for variant in Self.deletions(of: word) { deletions[variant, default: []].append(Int32(index)) }
        }
        self.deletions = deletions
    }

    public var count: Int { words.count }

    /// Completions of `text`: the words before the last are kept as typed; the last is completed
    /// (words it begins) or, when nothing begins with it, corrected (words one or two edits away),
    /// most frequent first.
    public func suggest(_ text: String, limit: Int) -> [String] {
        let terms = SearchQuery.terms(of: text)
        guard let last = terms.last, limit > 0 else { return [] }
        let head = terms.dropLast().joined(separator: " ")
        var candidates = completions(of: last, limit: limit)
        if candidates.isEmpty { candidates = corrections(of: last, limit: limit) }
        return candidates.map { head.isEmpty ? $0 : head + " " + $0 }
    }

    func completions(of prefix: String, limit: Int) -> [String] {
        // The first word not below the prefix; every word that starts with it follows.
        var low = 0, high = words.count
        while low < high {
            let middle = (low + high) / 2
            if words[middle] < prefix { low = middle + 1 } else { high = middle }
        }
        var matches: [Int] = []
        var index = low
        while index < words.count, words[index].hasPrefix(prefix), matches.count < 2_000 {
            matches.append(index)
            index += 1
        }
        return ranked(matches, limit: limit)
    }

    func corrections(of word: String, limit: Int) -> [String] {
        guard word.count >= 3, word.count <= 24 else { return [] }
        var found: Set<Int> = []
        for variant in Self.deletions(of: word) {
            for index in deletions[variant] ?? [] { found.insert(Int(index)) }
        }
        let allowed = word.count <= 4 ? 1 : 2
        return ranked(found.filter { Self.distance(words[$0], word) <= allowed }, limit: limit)
    }

    func ranked(_ indexes: some Collection<Int>, limit: Int) -> [String] {
        indexes.sorted { counts[$0] != counts[$1] ? counts[$0] > counts[$1] : words[$0] < words[$1] }.prefix(limit).map { words[$0] }
    }

    /// The word and every variant with one character deleted: two words within one edit (insert,
    /// delete, substitute) share at least one of these, and a transposition shares one too.
    static func deletions(of word: String) -> Set<String> {
        let characters = Array(word)
        var variants: Set<String> = [word]
        for index in characters.indices {
            var shorter = characters
            shorter.remove(at: index)
            variants.insert(String(shorter))
        }
        return variants
    }

    /// Optimal string alignment distance (Levenshtein plus adjacent transpositions).
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty || b.isEmpty { return max(a.count, b.count) }
        var previous2 = [Int](repeating: 0, count: b.count + 1)
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    current[j] = min(current[j], previous2[j - 2] + 1)
                }
            }
            (previous2, previous, current) = (previous, current, previous2)
        }
        return previous[b.count]
    }
}
