import CZlib

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a workload input file in chunks, gunzipping files whose name ends in `.gz` through zlib as it
/// goes, so a file is never held whole in memory unless the caller keeps it.
enum TraceInput {
    /// Bytes read from the file per `read(2)`.
    static let chunkSize = 64 * 1024

    /// Calls `body` with each chunk of the file's (decompressed) content, in order.
    static func forEachChunk(
        path: String,
        _ body: (UnsafeBufferPointer<UInt8>) throws(SimulatorError) -> Void
    ) throws(SimulatorError) {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw unreadable(path, "cannot open") }
        defer { close(fd) }
        let inflater = path.hasSuffix(".gz") ? try Inflater(file: path) : nil
        let buffer = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: chunkSize)
        defer { buffer.deallocate() }
        while true {
            let count = read(fd, buffer.baseAddress, chunkSize)
            guard count >= 0 else { throw unreadable(path, "cannot read") }
            if count == 0 { break }
            let chunk = UnsafeBufferPointer(rebasing: buffer[0..<count])
            if let inflater {
                try inflater.inflate(chunk, body)
            } else {
                try body(chunk)
            }
        }
        try inflater?.finish()
    }

    /// Calls `body` with each line (without its `\n` or `\r\n`) and its 1-based number. A last line
    /// without a newline counts.
    static func forEachLine(
        path: String,
        _ body: (_ line: UnsafeBufferPointer<UInt8>, _ number: Int) throws(SimulatorError) -> Void
    ) throws(SimulatorError) {
        var splitter = LineSplitter()
        try forEachChunk(path: path) { (chunk) throws(SimulatorError) in try splitter.feed(chunk, body) }
        try splitter.finish(body)
    }

    /// The whole (decompressed) content of a small file.
    static func contents(path: String) throws(SimulatorError) -> [UInt8] {
        var bytes: [UInt8] = []
        try forEachChunk(path: path) { chunk in bytes.append(contentsOf: chunk) }
        return bytes
    }

    private static func unreadable(_ path: String, _ what: String) -> SimulatorError {
        SimulatorError(.unreadable, file: path, message: "\(what): \(String(cString: strerror(errno)))")
    }
}

/// Cuts chunks into lines, carrying a line that spans chunks over to the next one.
private struct LineSplitter {
    var carry: [UInt8] = []
    var number = 0

    mutating func feed(
        _ chunk: UnsafeBufferPointer<UInt8>,
        _ body: (UnsafeBufferPointer<UInt8>, Int) throws(SimulatorError) -> Void
    ) throws(SimulatorError) {
        guard let base = chunk.baseAddress else { return }
        var start = 0
        while start < chunk.count,
            let found = memchr(base + start, Int32(UInt8(ascii: "\n")), chunk.count - start)
        {
            let end = base.distance(to: found.assumingMemoryBound(to: UInt8.self))
            let piece = UnsafeBufferPointer(rebasing: chunk[start..<end])
            if carry.isEmpty {
                try emit(piece, body)
            } else {
                carry.append(contentsOf: piece)
                try flush(body)
            }
            start = end + 1
        }
        carry.append(contentsOf: chunk[start...])
    }

    mutating func finish(
        _ body: (UnsafeBufferPointer<UInt8>, Int) throws(SimulatorError) -> Void
    ) throws(SimulatorError) {
        if !carry.isEmpty { try flush(body) }
    }

    private mutating func flush(
        _ body: (UnsafeBufferPointer<UInt8>, Int) throws(SimulatorError) -> Void
    ) throws(SimulatorError) {
        number += 1
        let number = number
        try carry.withUnsafeBufferPointer { (line) throws(SimulatorError) in try Self.deliver(line, number, body) }
        carry.removeAll(keepingCapacity: true)
    }

    private mutating func emit(
        _ line: UnsafeBufferPointer<UInt8>,
        _ body: (UnsafeBufferPointer<UInt8>, Int) throws(SimulatorError) -> Void
    ) throws(SimulatorError) {
        number += 1
        try Self.deliver(line, number, body)
    }

    /// Hands `line` to `body` without a trailing `\r`.
    private static func deliver(
        _ line: UnsafeBufferPointer<UInt8>,
        _ number: Int,
        _ body: (UnsafeBufferPointer<UInt8>, Int) throws(SimulatorError) -> Void
    ) throws(SimulatorError) {
        let trimmed = line.last == UInt8(ascii: "\r") ? UnsafeBufferPointer(rebasing: line.dropLast()) : line
        try body(trimmed, number)
    }
}

/// A zlib inflate stream that accepts gzip or zlib framing (`windowBits` 15 + 32) and concatenated gzip
/// members. The `z_stream` lives at a fixed address, as zlib requires.
private final class Inflater {
    private let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    private let output = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: 4 * TraceInput.chunkSize)
    private let file: String
    private var ended = false
    private var started = false

    init(file: String) throws(SimulatorError) {
        self.file = file
        stream.initialize(to: z_stream())
        let status = inflateInit2_(stream, 15 + 32, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else {
            stream.deallocate()
            output.deallocate()
            throw SimulatorError(.corrupt, file: file, message: "zlib cannot start (status \(status))")
        }
    }

    deinit {
        inflateEnd(stream)
        stream.deallocate()
        output.deallocate()
    }

    /// Inflates one chunk of compressed input, handing each piece of output to `body`.
    func inflate(
        _ input: UnsafeBufferPointer<UInt8>,
        _ body: (UnsafeBufferPointer<UInt8>) throws(SimulatorError) -> Void
    ) throws(SimulatorError) {
        stream.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress)
        stream.pointee.avail_in = UInt32(input.count)
        while true {
            if ended {
                // Another gzip member follows the one that ended.
                guard stream.pointee.avail_in > 0 else { return }
                inflateReset(stream)
                ended = false
            }
            started = true
            stream.pointee.next_out = output.baseAddress
            stream.pointee.avail_out = UInt32(output.count)
            let status = CZlib.inflate(stream, Z_NO_FLUSH)
            guard status == Z_OK || status == Z_STREAM_END || status == Z_BUF_ERROR else { throw corrupt() }
            let produced = output.count - Int(stream.pointee.avail_out)
            if produced > 0 { try body(UnsafeBufferPointer(rebasing: output[0..<produced])) }
            if status == Z_STREAM_END {
                ended = true
            } else if stream.pointee.avail_out > 0 {
                return  // all input consumed and all output flushed: wait for the next chunk
            }
        }
    }

    /// Checks that the compressed data ended where the file did.
    func finish() throws(SimulatorError) {
        guard ended else {
            let what = started ? "truncated gzip data: the file ends inside the compressed stream" : "empty gzip file"
            throw SimulatorError(.corrupt, file: file, message: what)
        }
    }

    private func corrupt() -> SimulatorError {
        let reason = stream.pointee.msg.map { String(cString: $0) } ?? "unknown zlib error"
        return SimulatorError(.corrupt, file: file, message: "corrupt gzip data (\(reason))")
    }
}
