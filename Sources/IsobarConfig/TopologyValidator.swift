import Foundation
import IsobarModel

/// Checks a decoded `TopologyFile` and builds the `Topology` it describes.
///
/// Every check logs to `log` and goes on, so one pass reports every problem of the file. A `Topology` is
/// returned only when nothing at all was logged, the decoding of the file included.
struct TopologyValidator: Validating {
    /// What a topology is for.
    enum Purpose {
        /// A mesh to run (`isobar serve`, `isobar up`).
        case mesh
        /// The fleet of a scenario (`isobar simulate`): every backend is an emulated engine, and profiles may
        /// also be the ones the scenario loads, named here.
        case simulation(profiles: [String])
    }

    let file: TopologyFile
    let log: DiagnosticLog
    /// Where `*_env` keys are looked up.
    let environment: [String: String]
    /// Reads `api_key_file` paths, already resolved against `directory`.
    let readFile: (String) -> String?
    /// The directory of the topology file, for relative `api_key_file` paths; `nil` if its name has none.
    let directory: String?
    var purpose = Purpose.mesh

    /// The topology, or `nil` if any problem was logged while validating it. Replicated backends are
    /// expanded (see `expandingReplicas`).
    func validate() -> Topology? {
        let before = log.count
        let regionNames = declaredNames(file.regions?.value, \.name)
        let mesh = checkMesh()
        let regions = checkRegions()
        let nodes = checkNodes(regions: regionNames)
        let backends = checkBackends(regions: regionNames)
        let models = checkModels()
        let routing = checkRouting()
        let catchAll = checkCatchAll()
        let limits = checkLimits()
        let keys = checkKeys(models: models.map(\.name))
        let redis = checkRedis()
        checkReplicaNames()
        guard log.count == before, let mesh else { return nil }
        let topology = Topology(
            mesh: mesh,
            regions: regions,
            nodes: nodes,
            backends: backends,
            models: models,
            routing: routing,
            catchAll: catchAll,
            limits: limits,
            keys: keys,
            redis: redis
        )
        return expandingReplicas(topology)
    }

    // MARK: - Mesh

    private func checkMesh() -> Mesh? {
        guard let mesh = file.mesh else {
            log.missing(file.location.key("mesh"))
            return nil
        }
        let name = required(mesh.name, "name", in: mesh.location)
        if let name, name.value.isEmpty { log.error(name.location, "must not be empty") }
        if let keyEnv = mesh.gossipKeyEnv {
            checkGossipKey(keyEnv)
        } else if let beyond = gossipAddresses().first(where: { !$0.value.isLoopback }) {
            log.error(beyond.location, "mesh.gossip_key_env is required when a node gossips beyond loopback")
        }
        let seeds = (mesh.seeds?.value ?? []).compactMap { seed -> HostPort? in
            guard let address = address(seed)?.value else { return nil }
            guard address.port != 0, !address.isWildcard else {
                log.error(seed.location, "a seed is an address to reach a node at: not port 0 or \(address.host)")
                return nil
            }
            return address
        }
        if let pool = file.nodes?.value.first(where: { $0.pool?.value == true }), seeds.isEmpty,
            !(file.nodes?.value.contains { $0.pool?.value != true && $0.gossip != nil } ?? false)
        {
            log.error(
                pool.pool?.location ?? pool.location,
                "a pool's nodes find each other through mesh.seeds or the gossip address of a named node; "
                    + "neither is given (add mesh.seeds, such as a DNS name resolving to the pool's nodes)"
            )
        }
        guard let name else { return nil }
        return Mesh(name: name.value, gossipKeyEnv: mesh.gossipKeyEnv?.value, seeds: seeds)
    }

    /// Checks that the variable named by `gossip_key_env` holds a base64 key of 32 bytes. An unset variable
    /// is fine while every node listens and gossips on loopback only.
    private func checkGossipKey(_ keyEnv: Sourced<String>) {
        guard !keyEnv.value.isEmpty else { return log.error(keyEnv.location, "must not be empty") }
        let text = environment[keyEnv.value]?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        guard !text.isEmpty else {
            let addresses = gossipAddresses() + listenAddresses()
            if addresses.allSatisfy(\.value.isLoopback) { return }
            return log.error(
                keyEnv.location,
                "environment variable \(keyEnv.value) is not set (a node listens or gossips beyond loopback)"
            )
        }
        // A keyring: keys separated by commas, the one that seals first (rotation: `new,old`, then `new`).
        let keys = text.split(separator: ",", omittingEmptySubsequences: false)
        for (i, part) in keys.enumerated() {
            let which = keys.count > 1 ? " (key \(i + 1))" : ""
            guard let key = Data(base64Encoded: part.trimmingCharacters(in: .whitespaces)) else {
                log.error(keyEnv.location, "environment variable \(keyEnv.value) is not valid base64\(which)")
                continue
            }
            if key.count != 32 {
                log.error(
                    keyEnv.location,
                    "environment variable \(keyEnv.value) must hold a base64 key of 32 bytes\(which), got \(key.count) bytes"
                )
            }
        }
    }

    private func gossipAddresses() -> [Sourced<HostPort>] {
        (file.nodes?.value ?? []).compactMap { parsedAddress($0.gossip) }
    }

    private func listenAddresses() -> [Sourced<HostPort>] {
        (file.nodes?.value ?? []).compactMap { parsedAddress($0.listen) }
    }

    private func parsedAddress(_ text: Sourced<String>?) -> Sourced<HostPort>? {
        guard let text, case .success(let address) = HostPort.parse(text.value) else { return nil }
        return Sourced(value: address, location: text.location)
    }

    // MARK: - Regions and nodes

    private func checkRegions() -> [Region] {
        guard let list = nonEmptyList(file.regions, "regions", what: "region") else { return [] }
        var names = NameTable(kind: "region", log: log)
        return list.compactMap { region in
            names.claim(region.name, in: region.location).map { Region(name: RegionID($0)) }
        }
    }

    private func checkNodes(regions: [String]) -> [Node] {
        guard let list = nonEmptyList(file.nodes, "nodes", what: "node") else { return [] }
        var names = NameTable(kind: "node", log: log)
        var addresses = AddressTable(log: log)
        return list.compactMap { node in
            let name = names.claim(node.name, in: node.location)
            let region = reference(node.region, "region", in: node.location, kind: "region", among: regions)
            let listen = address(required(node.listen, "listen", in: node.location))
            let gossip = address(node.gossip)
            let pool = node.pool?.value ?? false
            if pool {
                // Every member of a pool binds the same ports, on its own machine.
                var own = AddressTable(log: log)
                if let name { checkPool(node, name: name, listen: listen, gossip: gossip, addresses: &own) }
            } else {
                if let name, let listen { addresses.claimListen(listen, node: name) }
                if let name, let gossip { addresses.claimGossip(gossip, node: name) }
            }
            guard let name, let region, let listen, node.gossip == nil || gossip != nil else { return nil }
            return Node(
                name: NodeID(name),
                region: RegionID(region),
                listen: listen.value,
                gossip: gossip?.value,
                pool: pool
            )
        }
    }

    /// A pool gossips (its members' addresses are learned by gossip), on fixed ports other nodes can reach.
    private func checkPool(
        _ node: NodeFile,
        name: String,
        listen: Sourced<HostPort>?,
        gossip: Sourced<HostPort>?,
        addresses: inout AddressTable
    ) {
        if node.gossip == nil {
            log.missing(
                node.location.key("gossip"),
                "required key is missing: a pool's nodes learn of each other by gossip"
            )
        }
        for address in [listen, gossip].compactMap(\.self) where address.value.port == 0 {
            log.error(address.location, "a pool's nodes all use the same port, which the others connect to: not 0")
        }
        if let listen { addresses.claimListen(listen, node: name) }
        if let gossip { addresses.claimGossip(gossip, node: name) }
    }

    private func address(_ text: Sourced<String>?) -> Sourced<HostPort>? {
        guard let text else { return nil }
        switch HostPort.parse(text.value) {
        case .success(let address): return Sourced(value: address, location: text.location)
        case .failure(let error):
            log.error(text.location, error.message)
            return nil
        }
    }

    // MARK: - Shared checks

    /// The names given to the items of a list, for checking references to them; repeats included.
    func declaredNames<Item>(_ items: [Item]?, _ name: KeyPath<Item, Sourced<String>?>) -> [String] {
        (items ?? []).compactMap { $0[keyPath: name]?.value }
    }

    /// The items of a top-level list that must have at least one item.
    func nonEmptyList<Item>(_ list: Sourced<[Item]>?, _ key: String, what: String) -> [Item]? {
        guard let list else {
            log.missing(file.location.key(key), "required key is missing; at least one \(what) is needed")
            return nil
        }
        if list.value.isEmpty { log.error(list.location, "at least one \(what) is needed") }
        return list.value
    }
}

// MARK: - Tables

/// The names given so far to one kind of item; logs missing, malformed and repeated ones.
struct NameTable {
    let kind: String
    let log: DiagnosticLog
    /// Whether names must match `[A-Za-z0-9._-]+` (regions, nodes, backends), as they appear in metrics
    /// labels and headers. Model names are free text.
    var identifier = true
    private var firstLines: [String: Int] = [:]

    init(kind: String, log: DiagnosticLog, identifier: Bool = true) {
        self.kind = kind
        self.log = log
        self.identifier = identifier
    }

    /// The name if it is present, well formed and new (`key`: where the owner gives it).
    mutating func claim(_ name: Sourced<String>?, in owner: Location, key: String = "name") -> String? {
        guard let name else {
            log.missing(owner.key(key))
            return nil
        }
        guard !name.value.isEmpty else {
            log.error(name.location, "must not be empty")
            return nil
        }
        if identifier, !name.value.unicodeScalars.allSatisfy(Self.isNameCharacter) {
            log.error(name.location, "\(kind) name '\(name.value)' may only contain letters, digits, '.', '_' and '-'")
            return nil
        }
        if let first = firstLines[name.value] {
            log.error(name.location, "duplicate \(kind) '\(name.value)' (first defined on line \(first))")
            return nil
        }
        firstLines[name.value] = name.location.line
        return name.value
    }

    private static func isNameCharacter(_ c: Unicode.Scalar) -> Bool {
        c.isASCII && (c.properties.isAlphabetic || ("0"..."9").contains(c) || c == "." || c == "_" || c == "-")
    }
}

/// The listen and gossip addresses taken so far; logs a second node on the same one. Port 0 (any free
/// port) is never a conflict. Gossip also syncs full state over TCP, so it may not take a listen address.
struct AddressTable {
    let log: DiagnosticLog
    private var listen: [HostPort: String] = [:]
    private var gossip: [HostPort: String] = [:]

    init(log: DiagnosticLog) {
        self.log = log
    }

    mutating func claimListen(_ address: Sourced<HostPort>, node: String) {
        guard address.value.port != 0 else { return }
        if let other = listen[address.value] {
            log.error(address.location, "listen address \(address.value) is already used by node '\(other)'")
        } else if let other = gossip[address.value] {
            log.error(
                address.location,
                "listen address \(address.value) is already the gossip address of node '\(other)'"
            )
        } else {
            listen[address.value] = node
        }
    }

    mutating func claimGossip(_ address: Sourced<HostPort>, node: String) {
        guard address.value.port != 0 else { return }
        if let other = gossip[address.value] {
            log.error(address.location, "gossip address \(address.value) is already used by node '\(other)'")
        } else if let other = listen[address.value] {
            log.error(
                address.location,
                "gossip address \(address.value) is already the listen address of node '\(other)'"
            )
        } else {
            gossip[address.value] = node
        }
    }
}
