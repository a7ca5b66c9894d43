import Foundation
import IsobarWire

/// The real exposition samples in `Fixtures/` (see `Fixtures/SOURCES.md`), read next to this file.
enum PrometheusFixture {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
        "Fixtures"
    )

    static func bytes(_ name: String) -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: directory.appendingPathComponent(name).path) else {
            preconditionFailure("fixture \(name) is missing from \(directory.path)")
        }
        return Array(data)
    }

    static func exposition(_ name: String) -> PrometheusExposition {
        bytes(name).withUnsafeBytes { PrometheusParser.parse($0) }
    }
}
