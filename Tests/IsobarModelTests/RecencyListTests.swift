import IsobarModel
import Testing

@Suite("RecencyList: least-recently-used order over slots")
struct RecencyListTests {
    /// The slots from newest to oldest.
    static func order(_ list: RecencyList) -> [Int] {
        var out: [Int] = []
        var slot = list.newest
        while slot >= 0 {
            out.append(slot)
            slot = list.older(than: slot)
        }
        return out
    }

    @Test("Linking, touching and unlinking keep the order; unlinking the ends moves oldest and newest")
    func order() {
        var list = RecencyList()
        #expect(list.oldest == -1 && list.newest == -1)
        for slot in [0, 3, 1] { list.linkNewest(slot) }
        #expect(Self.order(list) == [1, 3, 0])
        list.touch(0)
        #expect(Self.order(list) == [0, 1, 3])
        #expect(list.oldest == 3)
        list.unlink(1)
        #expect(Self.order(list) == [0, 3])
        list.unlink(3)
        #expect(list.oldest == 0 && list.newest == 0)
        list.unlink(0)
        #expect(list.oldest == -1 && list.newest == -1)
        list.linkNewest(3)
        #expect(Self.order(list) == [3])
    }
}
