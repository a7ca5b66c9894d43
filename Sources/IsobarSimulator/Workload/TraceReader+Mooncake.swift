import IsobarWire

// MARK: - Mooncake JSON lines

extension TraceReader {
    /// Reads a Mooncake trace: one JSON object per line with `timestamp` (milliseconds), `input_length`,
    /// `output_length` and optionally `hash_ids` (prefix-block hashes). Other keys are ignored.
    static func readMooncake(path: String) throws(SimulatorError) -> [TraceRecord] {
        var records: [TraceRecord] = []
        try TraceInput.forEachLine(path: path) { (line, number) throws(SimulatorError) in
            guard line.contains(where: { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\t") }) else { return }
            switch JSON.parse(UnsafeRawBufferPointer(line)) {
            case .success(let value): records.append(try mooncakeRecord(value, file: path, line: number))
            case .failure(let error):
                throw .malformed(path, line: number, "\(error.message) (column \(error.offset + 1))")
            }
        }
        return records
    }

    private static func mooncakeRecord(_ value: JSON, file: String, line: Int) throws(SimulatorError) -> TraceRecord {
        guard let object = value.objectValue else { throw .malformed(file, line: line, "expected a JSON object") }
        func wrong(_ key: String, _ expected: String) -> SimulatorError {
            let found = object[key].map { "got \(SimulatorError.quote($0.text))" } ?? "it is missing"
            return .malformed(file, line: line, "\(key): expected \(expected), \(found)")
        }
        guard let milliseconds = object["timestamp"]?.doubleValue, milliseconds >= 0, milliseconds.isFinite else {
            throw wrong("timestamp", "a non-negative number of milliseconds")
        }
        func length(_ key: String) throws(SimulatorError) -> UInt64 {
            guard let number = object[key].flatMap(unsigned) else { throw wrong(key, "a non-negative integer") }
            return try tokens(number, column: key, file: file, line: line)
        }
        let input = try length("input_length")
        let output = try length("output_length")
        var hashIDs: [UInt64] = []
        if let ids = object["hash_ids"] {
            guard let array = ids.arrayValue else { throw wrong("hash_ids", "an array of non-negative integers") }
            hashIDs.reserveCapacity(array.count)
            for id in array {
                guard let hash = unsigned(id) else { throw wrong("hash_ids", "an array of non-negative integers") }
                hashIDs.append(hash)
            }
        }
        return record(arrival: milliseconds / 1000, prompt: input, output: output, hashIDs: hashIDs)
    }

    /// The value of a JSON number written as digits only.
    private static func unsigned(_ value: JSON) -> UInt64? {
        guard case .number(let number) = value else { return nil }
        return UInt64(number.literal)
    }
}
