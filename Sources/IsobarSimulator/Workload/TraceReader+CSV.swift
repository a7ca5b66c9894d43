// MARK: - Azure and length-only CSV traces

extension TraceReader {
    /// Reads an Azure LLM inference trace: `TIMESTAMP,ContextTokens,GeneratedTokens`.
    static func readAzure(path: String) throws(SimulatorError) -> [TraceRecord] {
        var records: [TraceRecord] = []
        var origin: CSVTimestamp?
        try readCSV(path: path, columns: ["TIMESTAMP", "ContextTokens", "GeneratedTokens"]) {
            (row) throws(SimulatorError) in
            let time = try row.timestamp(0)
            let start = origin ?? time
            origin = start
            records.append(
                record(arrival: time.seconds(since: start), prompt: try row.count(1), output: try row.count(2))
            )
        }
        return records
    }

    /// Reads a length-only trace: `num_prefill_tokens,num_decode_tokens,...`; every record arrives at 0.
    static func readLengths(path: String) throws(SimulatorError) -> [TraceRecord] {
        var records: [TraceRecord] = []
        try readCSV(path: path, columns: ["num_prefill_tokens", "num_decode_tokens"]) { (row) throws(SimulatorError) in
            records.append(record(arrival: 0, prompt: try row.count(0), output: try row.count(1)))
        }
        return records
    }

    /// Calls `body` with each data row of a CSV file, skipping blank lines and a header. With a header the
    /// `columns` are found by name (ignoring case), without one they are the first columns in order.
    private static func readCSV(
        path: String,
        columns: [String],
        _ body: (CSVRow) throws(SimulatorError) -> Void
    ) throws(SimulatorError) {
        var positions: [Int]?
        var fields: [Range<Int>] = []
        try TraceInput.forEachLine(path: path) { (line, number) throws(SimulatorError) in
            CSVRow.split(line, into: &fields)
            guard fields.count > 1 || !fields[0].isEmpty else { return }
            let known: [Int]
            if let positions {
                known = positions
            } else if let named = try CSVRow.header(line, fields, columns: columns, file: path, line: number) {
                positions = named
                return
            } else {
                known = Array(columns.indices)
                positions = known
            }
            guard let last = known.max(), last < fields.count else {
                let expected = columns.joined(separator: ",")
                throw .malformed(path, line: number, "expected the columns \(expected), got \(fields.count) field(s)")
            }
            try body(CSVRow(line: line, fields: fields, positions: known, file: path, number: number, names: columns))
        }
    }
}

/// The required fields of one CSV data row, in the order the format names them.
struct CSVRow {
    let line: UnsafeBufferPointer<UInt8>
    let fields: [Range<Int>]
    /// Where each of `names` is among `fields`.
    let positions: [Int]
    let file: String
    let number: Int
    let names: [String]

    /// The token count in field `index`.
    func count(_ index: Int) throws(SimulatorError) -> UInt64 {
        let text = field(index)
        guard let value = Self.decimal(text) else {
            throw .malformed(
                file,
                line: number,
                "\(names[index]): expected a non-negative integer, got \(SimulatorError.quote(text))"
            )
        }
        return try TraceReader.tokens(value, column: names[index], file: file, line: number)
    }

    /// The timestamp in field `index`.
    func timestamp(_ index: Int) throws(SimulatorError) -> CSVTimestamp {
        let text = field(index)
        guard let time = CSVTimestamp(text) else {
            throw .malformed(
                file,
                line: number,
                "\(names[index]): expected a time like 2023-11-16 18:17:03.9799600, got \(SimulatorError.quote(text))"
            )
        }
        return time
    }

    private func field(_ index: Int) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(rebasing: line[fields[positions[index]]])
    }

    /// The value of a field of decimal digits only, or nil (also when it overflows `UInt64`).
    static func decimal(_ text: UnsafeBufferPointer<UInt8>) -> UInt64? {
        guard !text.isEmpty else { return nil }
        var value: UInt64 = 0
        for byte in text {
            let digit = byte &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            let (shifted, overflow) = value.multipliedReportingOverflow(by: 10)
            let (sum, carry) = shifted.addingReportingOverflow(UInt64(digit))
            guard !overflow, !carry else { return nil }
            value = sum
        }
        return value
    }

    /// Splits a line at commas into field ranges with surrounding spaces and quotes trimmed.
    static func split(_ line: UnsafeBufferPointer<UInt8>, into fields: inout [Range<Int>]) {
        fields.removeAll(keepingCapacity: true)
        var start = 0
        for index in 0...line.count where index == line.count || line[index] == UInt8(ascii: ",") {
            var lower = start
            var upper = index
            while lower < upper, line[lower] == UInt8(ascii: " ") || line[lower] == UInt8(ascii: "\"") { lower += 1 }
            while upper > lower, line[upper - 1] == UInt8(ascii: " ") || line[upper - 1] == UInt8(ascii: "\"") {
                upper -= 1
            }
            fields.append(lower..<upper)
            start = index + 1
        }
    }

    /// A header row starts with something other than a digit.
    private static func isHeader(_ line: UnsafeBufferPointer<UInt8>, _ fields: [Range<Int>]) -> Bool {
        guard let first = fields.first?.first else { return true }
        return line[first] &- UInt8(ascii: "0") >= 10
    }

    /// The positions of `columns` in a header row, or nil when the row is data.
    static func header(
        _ line: UnsafeBufferPointer<UInt8>,
        _ fields: [Range<Int>],
        columns: [String],
        file: String,
        line number: Int
    ) throws(SimulatorError) -> [Int]? {
        guard isHeader(line, fields) else { return nil }
        let names = fields.map { String(decoding: UnsafeBufferPointer(rebasing: line[$0]), as: UTF8.self) }
        var positions: [Int] = []
        for column in columns {
            guard let position = names.firstIndex(where: { $0.lowercased() == column.lowercased() }) else {
                let found = names.joined(separator: ",")
                throw .malformed(file, line: number, "the header has no column \(column) (it has \(found))")
            }
            positions.append(position)
        }
        return positions
    }
}
