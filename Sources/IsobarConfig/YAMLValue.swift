import Yams

/// A node of a YAML document with its location. Its accessors return the node as the type a key expects,
/// or log what was expected and what was found and return `nil`.
struct YAMLValue {
    let node: Yams.Node
    let location: Location
    let log: DiagnosticLog

    init(_ node: Yams.Node, at location: Location, log: DiagnosticLog) {
        self.node = node
        self.location = location
        self.log = log
    }

    /// Prefixed to a mapping key that Yams rejected as a repeat, so the document still composes and the
    /// repeat is reported with its own line (see `YAMLDocument`). Private use, so never in a real file.
    static let repeatMarker: Character = "\u{E000}"

    private var tag: String { node.tag.rawValue }

    /// True for `~`, `null` and an empty value.
    var isNull: Bool { node.scalar != nil && tag == Tag.Name.null.rawValue }

    /// What the node is, for messages: "a string", "a number", "a list", ...
    var kind: String {
        switch node {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        case .scalar:
            switch tag {
            case Tag.Name.int.rawValue, Tag.Name.float.rawValue: return "a number"
            case Tag.Name.bool.rawValue: return "a boolean"
            case Tag.Name.null.rawValue: return "null"
            case Tag.Name.timestamp.rawValue: return "a date"
            default: return "a string"
            }
        }
    }

    /// Logs that the node is not `expected`.
    func typeError(_ expected: String, hint: String = "") {
        log.error(location, "expected \(expected), got \(kind)\(hint)")
    }

    // MARK: - Scalars

    /// The node's text. Numbers and dates are read as written (`name: 1` is the name "1"); booleans and
    /// null are refused, as `no` or `~` are almost never meant as text.
    func string() -> Sourced<String>? {
        guard case .scalar(let scalar) = node, tag != Tag.Name.bool.rawValue, !isNull else {
            let text = node.scalar?.string ?? ""
            typeError("a string", hint: tag == Tag.Name.bool.rawValue ? " (quote it to mean the text '\(text)')" : "")
            return nil
        }
        return Sourced(value: scalar.string, location: location)
    }

    /// A finite number; integers are accepted.
    func number() -> Sourced<Double>? {
        switch node.scalar == nil ? "" : tag {
        case Tag.Name.int.rawValue:
            guard let value = node.int else { break }
            return Sourced(value: Double(value), location: location)
        case Tag.Name.float.rawValue:
            guard let value = node.float, value.isFinite else {
                log.error(location, "expected a finite number, got '\(node.scalar?.string ?? "")'")
                return nil
            }
            return Sourced(value: value, location: location)
        default: break
        }
        typeError("a number")
        return nil
    }

    /// A whole number.
    func integer() -> Sourced<Int>? {
        switch node.scalar == nil ? "" : tag {
        case Tag.Name.int.rawValue:
            guard let value = node.int else {
                log.error(location, "number '\(node.scalar?.string ?? "")' is too large")
                return nil
            }
            return Sourced(value: value, location: location)
        case Tag.Name.float.rawValue:
            log.error(location, "expected a whole number, got \(node.scalar?.string ?? "")")
            return nil
        default:
            typeError("a whole number")
            return nil
        }
    }

    /// `true` or `false` (YAML's other spellings, such as `yes` and `off`, too).
    func boolean() -> Sourced<Bool>? {
        guard node.scalar != nil, tag == Tag.Name.bool.rawValue, let value = node.bool else {
            typeError("true or false")
            return nil
        }
        return Sourced(value: value, location: location)
    }

    // MARK: - Collections

    /// The items of a list, each located at `path[index]`.
    func items() -> [YAMLValue]? {
        guard case .sequence(let sequence) = node else {
            typeError("a list")
            return nil
        }
        return sequence.enumerated().map { index, item in
            YAMLValue(item, at: location.index(index, line: item.mark?.line ?? location.line), log: log)
        }
    }

    /// The items of a list decoded by `decode`; items it cannot decode are left out (it logged why).
    func list<Item>(_ decode: (YAMLValue) -> Item?) -> Sourced<[Item]>? {
        items().map { Sourced(value: $0.compactMap(decode), location: location) }
    }

    /// The keys of a mapping. Keys other than `keys` are logged as unknown (with the nearest known key as a
    /// suggestion), and repeated ones as duplicates. A value is located
    /// on the line of its key, which is where a reader looks for `capacity:` even when its keys follow below.
    func fields(_ keys: [String]) -> Fields? {
        guard case .mapping(let mapping) = node else {
            typeError("a mapping")
            return nil
        }
        var values: [String: YAMLValue] = [:]
        var firstLines: [String: Int] = [:]
        for (keyNode, valueNode) in pairsWithMerges(mapping) {
            guard case .scalar(let scalar) = keyNode else {
                log.error(location, "expected a key name, got \(YAMLValue(keyNode, at: location, log: log).kind)")
                continue
            }
            let name = String(scalar.string.drop { $0 == Self.repeatMarker })
            let line = keyNode.mark?.line ?? location.line
            let keyLocation = location.key(name, line: line)
            if let first = firstLines[name] {
                log.error(keyLocation, "duplicate key '\(name)' (first given on line \(first))")
                continue
            }
            firstLines[name] = line
            if !keys.contains(name) {
                log.error(keyLocation, "unknown key '\(name)'" + suggestion(for: name, among: keys))
            } else {
                values[name] = YAMLValue(valueNode, at: keyLocation, log: log)
            }
        }
        return Fields(owner: self, keys: keys, values: values)
    }

    /// The pairs of a mapping with YAML merge keys (`<<: *defaults`) expanded: merged pairs come after the
    /// mapping's own and only for keys it does not set itself.
    func pairsWithMerges(_ mapping: Yams.Node.Mapping) -> [(Yams.Node, Yams.Node)] {
        let isMerge = { (key: Yams.Node) in key.scalar?.string == "<<" && key.tag.rawValue == Tag.Name.merge.rawValue }
        var pairs = mapping.filter { !isMerge($0.key) }.map { ($0.key, $0.value) }
        var taken = Set(pairs.compactMap { $0.0.scalar?.string })
        for (key, source) in mapping where isMerge(key) {
            for merged in source.sequence.map(Array.init) ?? [source] {
                guard case .mapping(let mapping) = merged else {
                    YAMLValue(merged, at: location.key("<<", line: key.mark?.line), log: log).typeError(
                        "a mapping to merge"
                    )
                    continue
                }
                for (key, value) in mapping where taken.insert(key.scalar?.string ?? "").inserted {
                    pairs.append((key, value))
                }
            }
        }
        return pairs
    }
}

/// The known keys of one mapping, with typed accessors. A key that is absent or null reads as `nil`.
struct Fields {
    /// The mapping itself.
    let owner: YAMLValue
    let keys: [String]
    let values: [String: YAMLValue]

    var location: Location { owner.location }

    /// The value of `key`, or `nil` if it is absent or null.
    func value(_ key: String) -> YAMLValue? {
        assert(keys.contains(key), "'\(key)' is not a declared key of \(location.path)")
        guard let value = values[key], !value.isNull else { return nil }
        return value
    }

    func string(_ key: String) -> Sourced<String>? { value(key)?.string() }
    func number(_ key: String) -> Sourced<Double>? { value(key)?.number() }
    func integer(_ key: String) -> Sourced<Int>? { value(key)?.integer() }
    func boolean(_ key: String) -> Sourced<Bool>? { value(key)?.boolean() }
    func strings(_ key: String) -> Sourced<[Sourced<String>]>? { value(key)?.list { $0.string() } }

    func list<Item>(_ key: String, _ decode: (YAMLValue) -> Item?) -> Sourced<[Item]>? {
        value(key)?.list(decode)
    }

    func fields(_ key: String, _ keys: [String]) -> Fields? { value(key)?.fields(keys) }
}
