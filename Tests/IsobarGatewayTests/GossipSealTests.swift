import Crypto
import Foundation
import IsobarGossip
import Testing

@testable import IsobarGateway

/// Sealing gossip packets: AES-256-GCM with the mesh name authenticated, key rotation, and every way a
/// packet can fail to open named by its drop reason.
@Suite struct GossipSealTests {
    let salt: [UInt8] = [1, 2, 3, 4]
    let newKey = SymmetricKey(size: .bits256)
    let oldKey = SymmetricKey(size: .bits256)
    let packet: [UInt8] = Array("a gossip packet".utf8)

    func code(_ body: () throws -> Void) -> GossipError.Code? {
        do {
            try body()
            return nil
        } catch {
            return (error as? GossipError)?.code
        }
    }

    @Test("a sealed packet opens to its sequence, time and bytes, and is encrypted on the wire")
    func roundTrip() throws {
        let seal = GossipSeal(keys: [newKey], meshName: "prod", salt: salt)
        let bytes = seal.seal(packet, sequence: 42, sentAtMilliseconds: 1_700_000_000_123)
        #expect(bytes.count == packet.count + GossipEnvelope.overheadBytes)
        #expect(bytes.firstRange(of: packet) == nil)
        let opened = try seal.open(bytes)
        #expect(opened.sequence == 42 && opened.sentAt == 1_700_000_000_123 && Array(opened.packet) == packet)
    }

    @Test("rotation: a node holding new,old opens both; one holding only the new key refuses the old")
    func rotation() throws {
        let old = GossipSeal(keys: [oldKey], meshName: "prod", salt: salt)
        let rotating = GossipSeal(keys: [newKey, oldKey], meshName: "prod", salt: salt)
        let rotated = GossipSeal(keys: [newKey], meshName: "prod", salt: salt)
        let fromOld = old.seal(packet, sequence: 1, sentAtMilliseconds: 5)
        #expect(Array(try rotating.open(fromOld).packet) == packet)
        // The rotating node seals with the new key, which the rotated node opens and the old one does not.
        let fromRotating = rotating.seal(packet, sequence: 3, sentAtMilliseconds: 5)
        #expect(Array(try rotated.open(fromRotating).packet) == packet)
        #expect(code { _ = try old.open(fromRotating) } == .unauthenticated)
        #expect(code { _ = try rotated.open(fromOld) } == .unauthenticated)
    }

    @Test("tampering, another mesh's name, plaintext in an encrypted mesh and truncation are refused")
    func refusals() {
        let seal = GossipSeal(keys: [newKey], meshName: "prod", salt: salt)
        var bytes = seal.seal(packet, sequence: 7, sentAtMilliseconds: 5)
        bytes[bytes.count / 2] ^= 1
        #expect(code { _ = try seal.open(bytes) } == .unauthenticated)
        let staging = GossipSeal(keys: [newKey], meshName: "staging", salt: salt)
        #expect(
            code { _ = try seal.open(staging.seal(packet, sequence: 8, sentAtMilliseconds: 5)) } == .unauthenticated
        )
        let clear = GossipSeal(keys: [], meshName: "prod", salt: salt)
        #expect(code { _ = try seal.open(clear.seal(packet, sequence: 9, sentAtMilliseconds: 5)) } == .unauthenticated)
        #expect(code { _ = try clear.open(seal.seal(packet, sequence: 10, sentAtMilliseconds: 5)) } == .unauthenticated)
        #expect(code { _ = try seal.open([]) } == .malformed)
        #expect(code { _ = try seal.open([1, 2, 3]) } == .malformed)
        #expect(code { _ = try seal.open([9] + packet) } == .malformed)
        #expect(code { _ = try clear.open([0, 1]) } == .malformed)
    }

    @Test("the keyring variable holds base64 keys of 32 bytes, comma separated, the sealing one first")
    func keyring() throws {
        let a = Data(repeating: 1, count: 32).base64EncodedString()
        let b = Data(repeating: 2, count: 32).base64EncodedString()
        let keys = try GossipSeal.keys(fromEnvironment: "K", ["K": "\(a), \(b)\n"])
        #expect(keys.count == 2)
        #expect(keys[0].withUnsafeBytes { Array($0) } == [UInt8](repeating: 1, count: 32))
        #expect(throws: GatewayError.self) { try GossipSeal.keys(fromEnvironment: "K", [:]) }
        let short = Data(repeating: 1, count: 16).base64EncodedString()
        do {
            _ = try GossipSeal.keys(fromEnvironment: "K", ["K": "\(a),\(short)"])
            Issue.record("a 16-byte key was accepted")
        } catch {
            #expect(error.message == "environment variable K: key 2 is not base64 of 32 bytes")
        }
    }
}
