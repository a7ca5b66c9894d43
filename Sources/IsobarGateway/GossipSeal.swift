import Crypto
import Foundation
import IsobarGossip

/// Seals and opens gossip packets (the layout is `GossipEnvelope`'s).
///
/// With a keyring every packet is AES-256-GCM encrypted and authenticated, the mesh name as associated
/// data; the first key seals, every key opens, so a key is rotated by deploying `new,old` everywhere, then
/// `new`. Without one (a mesh on loopback only) packets travel in the clear but still carry the sequence
/// and time that replay protection checks, and a node without the key refuses sealed ones.
struct GossipSeal: Sendable {
    /// `SymmetricKey` is an immutable value the library has not marked `Sendable`.
    struct Key: @unchecked Sendable {
        let id: [UInt8]
        let key: SymmetricKey
    }

    /// Keys, the sealing one first; empty for a plaintext mesh.
    let keys: [Key]
    let associatedData: [UInt8]
    /// Random per process: with the sequence it makes every nonce unique.
    let salt: [UInt8]

    static let sealedFormat: UInt8 = 1
    static let plainFormat: UInt8 = 0

    init(keys: [SymmetricKey], meshName: String, salt: [UInt8]) {
        self.keys = keys.map { Key(id: Array(SHA256.hash(data: $0.withUnsafeBytes { Array($0) }).prefix(4)), key: $0) }
        self.associatedData = Array(meshName.utf8)
        self.salt = salt
    }

    /// The keyring in environment variable `name`: base64 keys of 32 bytes separated by commas, the one
    /// that seals first. Throws a message naming the variable when it is unset or malformed.
    static func keys(
        fromEnvironment name: String,
        _ environment: [String: String]
    ) throws(GatewayError) -> [SymmetricKey] {
        let text = environment[name]?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        guard !text.isEmpty else { throw GatewayError(.internal, "environment variable \(name) is not set") }
        return try text.split(separator: ",").enumerated().map { (i, part) throws(GatewayError) in
            let trimmed = part.trimmingCharacters(in: .whitespaces)
            guard let data = Data(base64Encoded: trimmed), data.count == 32 else {
                throw GatewayError(.internal, "environment variable \(name): key \(i + 1) is not base64 of 32 bytes")
            }
            return SymmetricKey(data: data)
        }
    }

    var isEncrypted: Bool { !keys.isEmpty }

    /// The packet as sent: `sequence` must never repeat in this process.
    func seal(_ packet: [UInt8], sequence: UInt64, sentAtMilliseconds sent: UInt64) -> [UInt8] {
        var stamped = ByteWriter(capacity: GossipEnvelope.stampBytes + packet.count)
        stamped.u64(sequence)
        stamped.u64(sent)
        stamped.append(packet)
        guard let key = keys.first else { return [Self.plainFormat] + stamped.bytes }
        var nonce = ByteWriter(capacity: 12)
        nonce.append(salt)
        nonce.u64(sequence)
        // Sealing with a 12-byte nonce and a 32-byte key cannot fail.
        let box = try! AES.GCM.seal(
            stamped.bytes,
            using: key.key,
            nonce: AES.GCM.Nonce(data: nonce.bytes),
            authenticating: associatedData
        )
        var out: [UInt8] = [Self.sealedFormat]
        out.reserveCapacity(GossipEnvelope.overheadBytes + packet.count)
        out += key.id
        out += nonce.bytes
        out += box.ciphertext
        out += box.tag
        return out
    }

    /// The sequence, sending time and packet inside `bytes`, or `unauthenticated` / `malformed`.
    func open(_ bytes: [UInt8]) throws(GossipError) -> (sequence: UInt64, sentAt: UInt64, packet: ArraySlice<UInt8>) {
        guard let format = bytes.first else { throw GossipError(.malformed, "empty packet") }
        let stamped: [UInt8]
        switch format {
        case Self.plainFormat:
            guard keys.isEmpty else { throw GossipError(.unauthenticated, "a plaintext packet in an encrypted mesh") }
            stamped = Array(bytes.dropFirst())
        case Self.sealedFormat:
            guard !keys.isEmpty else {
                throw GossipError(.unauthenticated, "a sealed packet, and this node has no key")
            }
            guard bytes.count >= GossipEnvelope.overheadBytes else {
                throw GossipError(.malformed, "truncated envelope")
            }
            let id = bytes[1..<5]
            guard let key = keys.first(where: { $0.id[...] == id }) else {
                throw GossipError(.unauthenticated, "sealed with an unknown key")
            }
            let nonceEnd = GossipEnvelope.headerBytes
            let tagStart = bytes.count - GossipEnvelope.tagBytes
            do {
                let box = try AES.GCM.SealedBox(
                    nonce: AES.GCM.Nonce(data: bytes[5..<nonceEnd]),
                    ciphertext: bytes[nonceEnd..<tagStart],
                    tag: bytes[tagStart...]
                )
                stamped = Array(try AES.GCM.open(box, using: key.key, authenticating: associatedData))
            } catch {
                throw GossipError(.unauthenticated, "authentication failed")
            }
        default:
            throw GossipError(.malformed, "unknown envelope format \(format)")
        }
        var reader = ByteReader(stamped)
        let sequence = try reader.u64("sequence")
        let sent = try reader.u64("sending time")
        return (sequence, sent, stamped[reader.index...])
    }
}
