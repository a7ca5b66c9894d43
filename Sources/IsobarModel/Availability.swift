extension PolicyKind {
    /// True for policies this build implements; the others are reserved names of the design.
    public var isAvailable: Bool {
        switch self {
        case .roundRobin, .random, .leastRequest, .powerOfTwo: true
        case .isobar, .leastTokens, .peakEWMA: false
        }
    }
}

extension CatchAll.Mode {
    /// True for modes this build implements.
    public var isAvailable: Bool { self == .busy }
}
