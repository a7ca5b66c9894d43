// MARK: - Cursor

/// A position in one line of an exposition. Reads bytes with `load`, so the buffer may be bound to any type.
struct Cursor {
    let base: UnsafeRawPointer
    private(set) var position: Int
    private(set) var end: Int

    init(base: UnsafeRawPointer, start: Int, end: Int) {
        self.base = base
        self.position = start
        self.end = end
    }

    var atEnd: Bool { position >= end }
    /// The current byte; only when not `atEnd`.
    var peek: UInt8 { base.load(fromByteOffset: position, as: UInt8.self) }

    func byte(_ offset: Int) -> UInt8 { base.load(fromByteOffset: offset, as: UInt8.self) }

    mutating func advance() { position += 1 }

    /// True if the line is a sample of the metric whose name is at `name` (earlier in the same buffer).
    func startsWithSample(named name: Range<Int>) -> Bool {
        guard end - position > name.count else { return false }
        let next = byte(position + name.count)
        return (next.isBlank || next == .openBrace)
            && ByteRange.equal(base + position, base + name.lowerBound, count: name.count)
    }

    /// The offset of the first newline at or after `start`, or `end`. Eight bytes at a time: a lane of
    /// `word ^ 0x0A…` is zero exactly where the newline is.
    static func nextNewline(_ base: UnsafeRawPointer, from start: Int, end: Int) -> Int {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        var i = start
        while i + 8 <= end {
            let word = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: i, as: UInt64.self)) ^ (ones &* 0x0A)
            let zeros = (word &- ones) & ~word & highs
            if zeros != 0 { return i + zeros.trailingZeroBitCount / 8 }
            i += 8
        }
        while i < end, base.load(fromByteOffset: i, as: UInt8.self) != .newline { i += 1 }
        return i
    }

    /// Drops leading and trailing blanks and a trailing carriage return.
    mutating func trim() {
        while end > position, byte(end - 1).isBlank || byte(end - 1) == .carriageReturn { end -= 1 }
        skipBlanks()
    }

    mutating func skipBlanks() {
        while position < end, peek.isBlank { position += 1 }
    }

    /// Advances over the bytes that satisfy `predicate` and returns their range.
    mutating func take(while predicate: (UInt8) -> Bool) -> Range<Int> {
        let start = position
        while position < end, predicate(peek) { position += 1 }
        return start..<position
    }

    /// Advances over `expected` if it is the current byte.
    mutating func consume(_ expected: UInt8) -> Bool {
        guard position < end, peek == expected else { return false }
        position += 1
        return true
    }

    func text(_ range: Range<Int>) -> String { decodedString(base, range) }

    /// Reads up to an unescaped `terminator` (not consumed), or to the end of the line if `nil`, undoing
    /// `\\` and `\n` escapes, and `\"` when a terminator is given (label values; help text keeps it). Other
    /// escapes are kept as written.
    mutating func unescaped(upTo terminator: UInt8?, interner: inout ByteInterner) -> String {
        let start = position
        var hasEscape = false
        while position < end {
            let c = peek
            if c == terminator { break }
            if c == .backslash {
                hasEscape = true
                position += 1
            }
            position += 1
        }
        position = min(position, end)
        guard hasEscape else { return interner.string(base, start..<position) }
        var out: [UInt8] = []
        out.reserveCapacity(position - start)
        var i = start
        while i < position {
            let c = byte(i)
            guard c == .backslash, i + 1 < position else {
                out.append(c)
                i += 1
                continue
            }
            switch byte(i + 1) {
            case .backslash: out.append(.backslash)
            case UInt8(ascii: "n"): out.append(.newline)
            case .quote where terminator != nil: out.append(.quote)
            default: out.append(contentsOf: [c, byte(i + 1)])
            }
            i += 2
        }
        return out.withUnsafeBytes { interner.string($0.baseAddress!, 0..<$0.count) }
    }
}

// MARK: - Bytes

/// The bytes of `range` as a string; invalid UTF-8 becomes U+FFFD.
func decodedString(_ base: UnsafeRawPointer, _ range: Range<Int>) -> String {
    String(decoding: UnsafeRawBufferPointer(start: base + range.lowerBound, count: range.count), as: UTF8.self)
}

extension UInt8 {
    static let newline = UInt8(ascii: "\n")
    static let carriageReturn = UInt8(ascii: "\r")
    static let hash = UInt8(ascii: "#")
    static let quote = UInt8(ascii: "\"")
    static let backslash = UInt8(ascii: "\\")
    static let openBrace = UInt8(ascii: "{")
    static let closeBrace = UInt8(ascii: "}")
    static let comma = UInt8(ascii: ",")
    static let equals = UInt8(ascii: "=")

    var isBlank: Bool { self == 0x20 || self == 0x09 }
    var isDigit: Bool { self &- 0x30 < 10 }
    var isLetter: Bool { (self | 0x20) &- 0x61 < 26 }
    /// `[a-zA-Z0-9_]`.
    var isLabelByte: Bool { isLetter || isDigit || self == 0x5F }
    /// `[a-zA-Z0-9_:]`.
    var isNameByte: Bool { isLabelByte || self == 0x3A }
    /// `[a-zA-Z_:]`.
    var isNameStart: Bool { isNameByte && !isDigit }
}

// MARK: - Hashing and comparing byte ranges

enum ByteRange {
    /// A hash of the bytes of `range`, eight bytes per step.
    static func hash(_ base: UnsafeRawPointer, _ range: Range<Int>) -> UInt64 {
        var hash: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(range.count)
        var i = range.lowerBound
        while i + 8 <= range.upperBound {
            hash = mix(hash ^ base.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            i += 8
        }
        var tail: UInt64 = 0
        var shift: UInt64 = 0
        while i < range.upperBound {
            tail |= UInt64(base.load(fromByteOffset: i, as: UInt8.self)) << shift
            shift += 8
            i += 1
        }
        return mix(hash ^ tail)
    }

    /// The home slot of `hash` in a table of `mask + 1` slots; taken from high bits, as the lowest bit of a
    /// stored hash is forced to 1 to tell used slots from empty ones.
    static func slot(_ hash: UInt64, mask: Int) -> Int {
        Int(truncatingIfNeeded: hash >> 17) & mask
    }

    private static func mix(_ x: UInt64) -> UInt64 {
        let y = x &* 0xBF58_476D_1CE4_E5B9
        return (y ^ (y >> 31)) &* 0x94D0_49BB_1331_11EB
    }

    /// True if the `count` bytes at `a` equal those at `b`.
    static func equal(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, count: Int) -> Bool {
        var i = 0
        while i + 8 <= count {
            guard
                a.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                    == b.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            else { return false }
            i += 8
        }
        while i < count {
            guard a.load(fromByteOffset: i, as: UInt8.self) == b.load(fromByteOffset: i, as: UInt8.self) else {
                return false
            }
            i += 1
        }
        return true
    }
}

// MARK: - Interning

/// Strings made from byte ranges, each distinct byte sequence built once: metric names, label names and
/// label values repeat on almost every line and on every scrape. Open addressing.
struct ByteInterner: Sendable {
    private var hashes: [UInt64] = Array(repeating: 0, count: 1024)
    private var strings: [String] = Array(repeating: "", count: 1024)
    private var count = 0
    /// Past this many strings the table starts over, so label values that never repeat cannot grow it
    /// without bound.
    static let limit = 16_384

    /// Strings held.
    var stored: Int { count }

    mutating func trimIfLarge() {
        if count > Self.limit { self = ByteInterner() }
    }

    mutating func string(_ base: UnsafeRawPointer, _ range: Range<Int>) -> String {
        let hash = ByteRange.hash(base, range) | 1  // 0 marks an empty slot
        let mask = hashes.count - 1
        var slot = ByteRange.slot(hash, mask: mask)
        while hashes[slot] != 0 {
            if hashes[slot] == hash, Self.equal(strings[slot], base, range) { return strings[slot] }
            slot = (slot + 1) & mask
        }
        let made = decodedString(base, range)
        hashes[slot] = hash
        strings[slot] = made
        count += 1
        if count * 2 > hashes.count { grow() }
        return made
    }

    private static func equal(_ string: String, _ base: UnsafeRawPointer, _ range: Range<Int>) -> Bool {
        let utf8 = string.utf8
        guard utf8.count == range.count else { return false }
        let contiguous = utf8.withContiguousStorageIfAvailable { stored in
            ByteRange.equal(UnsafeRawPointer(stored.baseAddress!), base + range.lowerBound, count: range.count)
        }
        if let contiguous { return contiguous }
        // Small strings live inline; `withUTF8` lays them out on the stack.
        var copy = string
        return copy.withUTF8 {
            ByteRange.equal(UnsafeRawPointer($0.baseAddress!), base + range.lowerBound, count: range.count)
        }
    }

    private mutating func grow() {
        let oldHashes = hashes
        let oldStrings = strings
        hashes = Array(repeating: 0, count: oldHashes.count * 2)
        strings = Array(repeating: "", count: oldHashes.count * 2)
        let mask = hashes.count - 1
        for (hash, string) in zip(oldHashes, oldStrings) where hash != 0 {
            var slot = ByteRange.slot(hash, mask: mask)
            while hashes[slot] != 0 { slot = (slot + 1) & mask }
            hashes[slot] = hash
            strings[slot] = string
        }
    }
}

// MARK: - Numbers

/// Sample values and timestamps from bytes. Plain decimals that a double represents exactly after one
/// multiplication or division by a power of ten (Clinger's fast path) are converted here; everything else
/// (`NaN`, `+Inf`, hex floats, long mantissas) goes through the standard library, which rounds correctly.
enum NumberScanner {
    private static let powersOfTen: [Double] = (0...22).map { exponent in
        var value = 1.0
        for _ in 0..<exponent { value *= 10 }
        return value
    }

    static func double(_ base: UnsafeRawPointer, _ range: Range<Int>) -> Double? {
        if let value = fastDouble(base, range) { return value }
        // The standard library also reads C's `nan(chars)`; the exposition format has no such value.
        for i in range {
            let c = base.load(fromByteOffset: i, as: UInt8.self)
            guard c.isLetter || c.isDigit || c == UInt8(ascii: ".") || c == UInt8(ascii: "+") || c == UInt8(ascii: "-")
            else { return nil }
        }
        return Double(decodedString(base, range))
    }

    private static func fastDouble(_ base: UnsafeRawPointer, _ range: Range<Int>) -> Double? {
        var i = range.lowerBound
        let end = range.upperBound
        func at(_ index: Int) -> UInt8 { base.load(fromByteOffset: index, as: UInt8.self) }
        guard i < end else { return nil }
        let negative = at(i) == UInt8(ascii: "-")
        if negative || at(i) == UInt8(ascii: "+") { i += 1 }
        var mantissa: UInt64 = 0
        var significant = 0
        var exponent = 0
        var digits = 0
        var inFraction = false
        while i < end {
            let c = at(i)
            if c.isDigit {
                digits += 1
                if mantissa != 0 || c != 0x30 { significant += 1 }
                guard significant <= 18 else { return nil }
                mantissa = mantissa * 10 + UInt64(c &- 0x30)
                if inFraction { exponent -= 1 }
            } else if c == UInt8(ascii: "."), !inFraction {
                inFraction = true
            } else {
                break
            }
            i += 1
        }
        guard digits > 0 else { return nil }
        if i < end, at(i) | 0x20 == UInt8(ascii: "e") {
            guard let written = writtenExponent(base, after: &i, end: end) else { return nil }
            exponent += written
        }
        guard i == end, mantissa <= 1 << 53, abs(exponent) <= 22 else { return nil }
        let magnitude =
            exponent < 0 ? Double(mantissa) / powersOfTen[-exponent] : Double(mantissa) * powersOfTen[exponent]
        return negative ? -magnitude : magnitude
    }

    /// The exponent after the `e` at `i` (at most four digits), advancing `i` past it.
    private static func writtenExponent(_ base: UnsafeRawPointer, after i: inout Int, end: Int) -> Int? {
        func at(_ index: Int) -> UInt8 { base.load(fromByteOffset: index, as: UInt8.self) }
        i += 1
        let negative = i < end && at(i) == UInt8(ascii: "-")
        if i < end, at(i) == UInt8(ascii: "-") || at(i) == UInt8(ascii: "+") { i += 1 }
        var written = 0
        let start = i
        while i < end, at(i).isDigit, i - start < 4 {
            written = written * 10 + Int(at(i) &- 0x30)
            i += 1
        }
        guard i > start else { return nil }
        return negative ? -written : written
    }

    /// An integer timestamp in milliseconds (0.0.4), or decimal seconds (OpenMetrics) turned into milliseconds.
    static func timestamp(_ base: UnsafeRawPointer, _ range: Range<Int>) -> Int64? {
        var i = range.lowerBound
        var negative = false
        if i < range.upperBound, base.load(fromByteOffset: i, as: UInt8.self) == UInt8(ascii: "-") {
            negative = true
            i += 1
        }
        var value: Int64 = 0
        while i < range.upperBound, base.load(fromByteOffset: i, as: UInt8.self).isDigit {
            let digit = Int64(base.load(fromByteOffset: i, as: UInt8.self) &- 0x30)
            let (scaled, overflow) = value.multipliedReportingOverflow(by: 10)
            guard !overflow else { return nil }
            value = scaled &+ digit
            i += 1
        }
        if i == range.upperBound, i > range.lowerBound + (negative ? 1 : 0) { return negative ? -value : value }
        guard let seconds = double(base, range), seconds.isFinite, abs(seconds) < 9.2e15 else { return nil }
        return Int64((seconds * 1000).rounded())
    }
}
