/// FNV-1a (Fowler, Noll, Vo): a fast, stable, non-cryptographic hash of bytes. Stable across processes
/// and runs, unlike `Hasher`, so it can name things on the wire or seed a generator.
public enum FNV1a {
    /// The 32-bit hash of `text`'s UTF-8.
    public static func hash32(_ text: some StringProtocol) -> UInt32 {
        var hash: UInt32 = 0x811C_9DC5
        for byte in text.utf8 { hash = (hash ^ UInt32(byte)) &* 0x0100_0193 }
        return hash
    }

    /// The 64-bit hash of `text`'s UTF-8.
    public static func hash64(_ text: some StringProtocol) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        return hash
    }
}
