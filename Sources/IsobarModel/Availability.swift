extension PolicyKind {
    /// True for policies this build implements (all of them).
    public var isAvailable: Bool { true }
}

extension CatchAll.Mode {
    /// True for modes this build implements.
    public var isAvailable: Bool { self == .busy }
}
