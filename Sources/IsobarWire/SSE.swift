/// One server-sent event: its name (the `event:` field) and its data (the `data:` lines joined by `\n`).
public struct SSEEvent: Sendable, Equatable {
    public var name: String?
    public var data: [UInt8]

    public init(name: String? = nil, data: [UInt8]) {
        self.name = name
        self.data = data
    }

    public init(name: String? = nil, data: String) {
        self.init(name: name, data: Array(data.utf8))
    }

    /// True for OpenAI's end-of-stream marker `data: [DONE]`.
    public var isDone: Bool {
        data.count == 6 && data.elementsEqual("[DONE]".utf8)
    }

    /// Appends the event in wire form: `event: NAME\n` (if named), `data: …\n` per line, then a blank line.
    public func write(into out: inout [UInt8]) {
        if let name {
            out.append(contentsOf: "event: ".utf8)
            out.append(contentsOf: name.utf8)
            out.append(0x0A)
        }
        var lineStart = 0
        for i in data.indices where data[i] == 0x0A {
            out.append(contentsOf: "data: ".utf8)
            out.append(contentsOf: data[lineStart..<i])
            out.append(0x0A)
            lineStart = i + 1
        }
        out.append(contentsOf: "data: ".utf8)
        out.append(contentsOf: data[lineStart...])
        out.append(contentsOf: [0x0A, 0x0A])
    }

    /// The event in wire form.
    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(data.count + 16)
        write(into: &out)
        return out
    }
}

/// An incremental parser of a `text/event-stream` body (WHATWG HTML, "Server-sent events").
///
/// Feed it bytes as they arrive in any split; it yields each event once its terminating blank line has
/// arrived. Lines end in LF, CRLF or CR. Comments (`:`) and `id:`/`retry:` fields are ignored.
public struct SSEParser: Sendable {
    /// Bytes of a line not yet terminated.
    private var partialLine: [UInt8] = []
    private var eventName: String?
    private var data: [UInt8] = []
    private var hasData = false
    /// The previous chunk ended in CR, so a leading LF belongs to that line ending.
    private var skipLeadingLF = false
    /// Largest event accepted; a longer one is an upstream error.
    public let maximumEventBytes: Int

    public init(maximumEventBytes: Int = 16 * 1024 * 1024) {
        self.maximumEventBytes = maximumEventBytes
    }

    /// Why a stream could not be parsed.
    public struct Overflow: Error, Sendable, Equatable {}

    /// Parses `bytes`, calling `onEvent` for each complete event.
    public mutating func push(_ bytes: UnsafeRawBufferPointer, _ onEvent: (SSEEvent) -> Void) throws(Overflow) {
        // An empty push must not forget a CR that ended the previous one.
        guard !bytes.isEmpty else { return }
        var index = 0
        if skipLeadingLF, bytes[index] == 0x0A { index += 1 }
        skipLeadingLF = false
        while index < bytes.count {
            // Find the end of the line.
            var end = index
            while end < bytes.count, bytes[end] != 0x0A, bytes[end] != 0x0D { end += 1 }
            if end == bytes.count {
                partialLine.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[index..<end]))
                if partialLine.count + data.count > maximumEventBytes { throw Overflow() }
                return
            }
            if partialLine.isEmpty {
                line(UnsafeRawBufferPointer(rebasing: bytes[index..<end]), onEvent)
            } else {
                partialLine.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[index..<end]))
                let whole = partialLine
                partialLine.removeAll(keepingCapacity: true)
                whole.withUnsafeBytes { line($0, onEvent) }
            }
            if data.count > maximumEventBytes { throw Overflow() }
            if bytes[end] == 0x0D {
                if end + 1 < bytes.count {
                    if bytes[end + 1] == 0x0A { end += 1 }
                } else {
                    skipLeadingLF = true
                }
            }
            index = end + 1
        }
    }

    /// Ends the stream. Returns a final event whose blank line never came, if any.
    public mutating func finish() -> SSEEvent? {
        if !partialLine.isEmpty {
            let whole = partialLine
            partialLine = []
            var pending: SSEEvent?
            whole.withUnsafeBytes { line($0) { pending = $0 } }
            if let pending { return pending }
        }
        guard hasData else { return nil }
        let event = SSEEvent(name: eventName, data: data)
        reset()
        return event
    }

    private mutating func reset() {
        eventName = nil
        data.removeAll(keepingCapacity: true)
        hasData = false
    }

    private mutating func line(_ line: UnsafeRawBufferPointer, _ onEvent: (SSEEvent) -> Void) {
        if line.isEmpty {
            if hasData { onEvent(SSEEvent(name: eventName, data: data)) }
            reset()
            return
        }
        if line[0] == UInt8(ascii: ":") { return }
        let colon = line.firstIndex(of: UInt8(ascii: ":")) ?? line.count
        var valueStart = min(colon + 1, line.count)
        if valueStart < line.count, line[valueStart] == 0x20 { valueStart += 1 }
        let field = UnsafeRawBufferPointer(rebasing: line[0..<colon])
        let value = UnsafeRawBufferPointer(rebasing: line[valueStart...])
        if field.elementsEqual("data".utf8) {
            if hasData { data.append(0x0A) }
            data.append(contentsOf: value)
            hasData = true
        } else if field.elementsEqual("event".utf8) {
            eventName = String(decoding: value, as: UTF8.self)
        }
    }
}
