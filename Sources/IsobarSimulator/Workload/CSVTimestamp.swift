/// A wall-clock time of a trace row, `YYYY-MM-DD HH:MM:SS[.fraction]` (a `T` may separate date and time;
/// the fraction has 1 to 9 digits). No time zone: traces use one throughout. Parsed by hand, as whole
/// seconds since 0001-01-01 plus nanoseconds, so differences stay exact to the nanosecond over any span,
/// across midnight and month ends.
struct CSVTimestamp: Equatable {
    var seconds: Int
    var nanoseconds: Int

    /// Days before the first of each month in a common year.
    private static let daysBeforeMonth = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334]

    init?(_ text: UnsafeBufferPointer<UInt8>) {
        guard text.count >= 19,
            text[4] == UInt8(ascii: "-"), text[7] == UInt8(ascii: "-"),
            text[10] == UInt8(ascii: " ") || text[10] == UInt8(ascii: "T"),
            text[13] == UInt8(ascii: ":"), text[16] == UInt8(ascii: ":"),
            let year = Self.number(text, 0, 4), let month = Self.number(text, 5, 2), let day = Self.number(text, 8, 2),
            let hour = Self.number(text, 11, 2), let minute = Self.number(text, 14, 2),
            let second = Self.number(text, 17, 2),
            year >= 1, (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second <= 60,
            let nanoseconds = Self.fraction(UnsafeBufferPointer(rebasing: text[19...]))
        else { return nil }
        let days = Self.daysSinceYearOne(year: year, month: month, day: day)
        self.seconds = ((days * 24 + hour) * 60 + minute) * 60 + second
        self.nanoseconds = nanoseconds
    }

    /// Seconds from `origin` to this time.
    func seconds(since origin: CSVTimestamp) -> Double {
        Double(seconds - origin.seconds) + Double(nanoseconds - origin.nanoseconds) * 1e-9
    }

    /// Days from 0001-01-01 in the proleptic Gregorian calendar.
    static func daysSinceYearOne(year: Int, month: Int, day: Int) -> Int {
        let before = year - 1
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let leapDay = leap && month > 2 ? 1 : 0
        return before * 365 + before / 4 - before / 100 + before / 400 + daysBeforeMonth[month - 1] + leapDay + day - 1
    }

    /// The value of `count` digits at `start`.
    private static func number(_ text: UnsafeBufferPointer<UInt8>, _ start: Int, _ count: Int) -> Int? {
        var value = 0
        for byte in text[start..<(start + count)] {
            let digit = byte &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            value = value * 10 + Int(digit)
        }
        return value
    }

    /// Nanoseconds of an empty suffix or of `.` and 1 to 9 digits.
    private static func fraction(_ suffix: UnsafeBufferPointer<UInt8>) -> Int? {
        if suffix.isEmpty { return 0 }
        guard suffix[0] == UInt8(ascii: "."), (2...10).contains(suffix.count),
            let digits = number(suffix, 1, suffix.count - 1)
        else { return nil }
        var scale = 1
        for _ in suffix.count..<10 { scale *= 10 }
        return digits * scale
    }
}
