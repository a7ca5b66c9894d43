extension CatchAll.Mode {
    /// True for modes this build implements.
    public var isAvailable: Bool { self == .busy }
}
