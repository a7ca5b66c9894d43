import IsobarModel

/// Big-endian, length-prefixed binary writing for gossip packets (and the shell's envelope).
public struct ByteWriter {
    public private(set) var bytes: [UInt8] = []

    public init(capacity: Int = 256) { bytes.reserveCapacity(capacity) }

    mutating func u8(_ v: UInt8) { bytes.append(v) }

    mutating func u16(_ v: UInt16) {
        bytes.append(UInt8(v >> 8))
        bytes.append(UInt8(truncatingIfNeeded: v))
    }

    mutating func u32(_ v: UInt32) {
        for shift in stride(from: 24, through: 0, by: -8) {
            bytes.append(UInt8(truncatingIfNeeded: v >> UInt32(shift)))
        }
    }

    public mutating func u64(_ v: UInt64) {
        for shift in stride(from: 56, through: 0, by: -8) {
            bytes.append(UInt8(truncatingIfNeeded: v >> UInt64(shift)))
        }
    }

    /// LEB128: 7 bits per byte, low first.
    mutating func varint(_ v: UInt64) {
        var v = v
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    mutating func varint(_ v: Int) { varint(UInt64(max(0, v))) }

    /// A string of at most 255 UTF-8 bytes (topology names are far shorter); longer ones are cut at a
    /// character boundary.
    mutating func string(_ s: String) {
        var utf8 = Array(s.utf8)
        if utf8.count > 255 { utf8 = Array(String(decoding: utf8.prefix(255), as: UTF8.self).utf8.prefix(252)) }
        bytes.append(UInt8(utf8.count))
        bytes.append(contentsOf: utf8)
    }

    mutating func f32(_ v: Double) { u32(Float(v).bitPattern) }

    mutating func address(_ a: HostPort) {
        string(a.host)
        u16(UInt16(clamping: a.port))
    }

    public mutating func append(_ other: some Collection<UInt8>) { bytes.append(contentsOf: other) }
}

/// Reads what `ByteWriter` wrote; every read checks bounds and throws `malformed` rather than trapping.
public struct ByteReader {
    let bytes: [UInt8]
    public private(set) var index: Int

    public init(_ bytes: [UInt8], from index: Int = 0) {
        self.bytes = bytes
        self.index = index
    }

    var remaining: Int { bytes.count - index }

    private mutating func take(_ n: Int, _ what: StaticString) throws(GossipError) -> ArraySlice<UInt8> {
        guard n >= 0, remaining >= n else {
            throw GossipError(.malformed, "truncated at byte \(index) reading \(what)")
        }
        defer { index += n }
        return bytes[index..<index + n]
    }

    mutating func u8(_ what: StaticString) throws(GossipError) -> UInt8 { try take(1, what).first ?? 0 }

    mutating func u16(_ what: StaticString) throws(GossipError) -> UInt16 {
        try take(2, what).reduce(0) { $0 << 8 | UInt16($1) }
    }

    mutating func u32(_ what: StaticString) throws(GossipError) -> UInt32 {
        try take(4, what).reduce(0) { $0 << 8 | UInt32($1) }
    }

    public mutating func u64(_ what: StaticString) throws(GossipError) -> UInt64 {
        try take(8, what).reduce(0) { $0 << 8 | UInt64($1) }
    }

    mutating func varint(_ what: StaticString) throws(GossipError) -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let byte = try u8(what)
            guard shift < 64, shift < 63 || byte <= 1 else {
                throw GossipError(.malformed, "varint too long reading \(what)")
            }
            value |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
        }
    }

    /// A varint that must fit in `Int` and be at most `limit`.
    mutating func count(_ what: StaticString, limit: Int) throws(GossipError) -> Int {
        let v = try varint(what)
        guard v <= UInt64(limit) else { throw GossipError(.malformed, "\(what) \(v) exceeds \(limit)") }
        return Int(v)
    }

    mutating func string(_ what: StaticString) throws(GossipError) -> String {
        let length = Int(try u8(what))
        let raw = try take(length, what)
        guard let s = String(validating: raw, as: UTF8.self), !s.isEmpty else {
            throw GossipError(.malformed, "\(what) is empty or not UTF-8")
        }
        return s
    }

    mutating func address() throws(GossipError) -> HostPort {
        HostPort(host: try string("host"), port: Int(try u16("port")))
    }

    mutating func f32(_ what: StaticString) throws(GossipError) -> Double {
        let v = Double(Float(bitPattern: try u32(what)))
        guard v.isFinite else { throw GossipError(.malformed, "\(what) is not a finite number") }
        return v
    }
}
