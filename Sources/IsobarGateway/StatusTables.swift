import IsobarWire

/// The mesh at a glance, as tables: regions, nodes and backends, built from the bodies of `GET /v1/mesh`
/// and `GET /v1/regions/{region}/health`. A node renders them as HTML at `/status`; `isobar status`
/// fetches the same bodies from a node and prints them as text, so both always show the same thing.
public struct StatusTables: Sendable {
    public struct Table: Sendable, Equatable {
        public var title: String
        public var columns: [String]
        public var rows: [[String]]
    }

    public var heading: String
    public var tables: [Table]

    /// Tables from a `/v1/mesh` body and the `/v1/regions/{region}/health` body of every region.
    public init(mesh: JSON, regions: [JSON]) {
        let node = mesh["node"]?.stringValue ?? "?"
        let encrypted = mesh["encrypted"]?.boolValue.map { $0 ? ", encrypted" : ", unencrypted" } ?? ""
        heading =
            "mesh \(mesh["mesh"]?.stringValue ?? "?") seen from \(node) (\(mesh["region"]?.stringValue ?? "?")"
            + (mesh["gossip"]?.boolValue == true
                ? ", incarnation \(mesh["incarnation"]?.intValue ?? 0)\(encrypted))" : ", not gossiping)")
        let rtts = Dictionary(
            (mesh["regions"]?.arrayValue ?? []).compactMap { r in r["name"]?.stringValue.map { ($0, r["rtt_ms"]) } },
            uniquingKeysWith: { a, _ in a }
        )
        var regionRows: [[String]] = []
        var nodeRows: [[String]] = []
        var backendRows: [[String]] = []
        for region in regions {
            let name = region["region"]?.stringValue ?? "?"
            let nodes = region["nodes"]?.arrayValue ?? []
            let backends = region["backends"]?.arrayValue ?? []
            regionRows.append([
                name,
                region["status"]?.stringValue ?? "?",
                "\(nodes.count { $0["status"]?.stringValue == "alive" })/\(nodes.count)",
                "\(backends.count { $0["usable"]?.boolValue == true })/\(backends.count)",
                Self.number(rtts[name] ?? nil, unit: " ms"),
            ])
            for n in nodes {
                nodeRows.append([
                    (n["name"]?.stringValue ?? "?") + (n["self"]?.boolValue == true ? " *" : ""),
                    name,
                    n["status"]?.stringValue ?? "?",
                    n["incarnation"]?.intValue.map(String.init) ?? "-",
                    Self.number(n["rtt_ms"], unit: " ms"),
                ])
            }
            for b in backends {
                let scraped = b["scraped"]
                // Latency and errors as this node saw them, else as the backend's region reported them.
                let seen = b["ttft_p50_ms"] != nil ? b : b["reported_by"]?[0] ?? b
                let inFlight = (b["in_flight"]?.intValue ?? 0) + (b["peer_in_flight"]?.intValue ?? 0)
                backendRows.append([
                    b["name"]?.stringValue ?? "?",
                    name,
                    b["engine"]?.stringValue ?? "?",
                    b["state"]?.stringValue ?? "?",
                    String(inFlight),
                    scraped.map { s in
                        "\(s["waiting"]?.intValue.map(String.init) ?? "-")/\(s["running"]?.intValue.map(String.init) ?? "-")"
                    } ?? "-",
                    Self.percent(scraped?["kv_usage"]),
                    Self.percent(seen["error_rate"]),
                    Self.number(seen["ttft_p50_ms"], unit: ""),
                    Self.number(seen["ttft_p99_ms"], unit: ""),
                    scraped.map { s in
                        Self.number(s["age_s"], unit: " s") + (s["stale"]?.boolValue == true ? " stale" : "")
                    } ?? "-",
                ])
            }
        }
        tables = [
            Table(
                title: "Regions",
                columns: ["region", "status", "nodes alive", "backends usable", "rtt"],
                rows: regionRows
            ),
            Table(title: "Nodes", columns: ["node", "region", "state", "incarnation", "rtt"], rows: nodeRows),
            Table(
                title: "Backends",
                columns: [
                    "backend", "region", "engine", "state", "in flight", "waiting/running", "kv", "errors",
                    "ttft p50 ms", "ttft p99 ms", "load age",
                ],
                rows: backendRows
            ),
        ]
    }

    /// Plain text with aligned columns, for a terminal.
    public var text: String {
        var out = heading + "\n"
        for table in tables {
            out += "\n" + table.title.uppercased() + "\n"
            let all = [table.columns] + table.rows
            let widths = table.columns.indices.map { c in
                all.map { $0.indices.contains(c) ? $0[c].count : 0 }.max() ?? 0
            }
            for row in all {
                let cells = row.indices.map { c in
                    c == row.count - 1 ? row[c] : row[c].padding(toLength: widths[c], withPad: " ", startingAt: 0)
                }
                out += cells.joined(separator: "  ") + "\n"
            }
        }
        return out
    }

    /// A page that refreshes itself every `refreshSeconds`.
    public func html(refreshSeconds: Int = 5) -> String {
        var out = """
            <!doctype html><html><head><meta charset="utf-8"><meta http-equiv="refresh" content="\(refreshSeconds)">
            <title>Isobar status</title><style>
            body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse;margin-bottom:1.5em}
            th,td{padding:.25em .8em;text-align:left;border-bottom:1px solid #ddd}th{background:#f4f4f4}
            .ok,.alive,.closed{color:#17803d}.degraded,.suspect,.half_open,.paused{color:#b36b00}
            .down,.dead,.open,.unreachable{color:#c0262d;font-weight:600}.left,.unknown,.empty{color:#777}
            </style></head><body>
            <h1>Isobar</h1><p>\(heading.xmlEscaped) · refreshes every \(refreshSeconds) s</p>
            """
        for table in tables {
            out += "<h2>\(table.title.xmlEscaped)</h2><table><tr>"
            out += table.columns.map { "<th>\($0.xmlEscaped)</th>" }.joined() + "</tr>"
            for row in table.rows {
                out +=
                    "<tr>" + row.map { "<td class=\"\($0.xmlEscaped)\">\($0.xmlEscaped)</td>" }.joined() + "</tr>"
            }
            out += "</table>"
        }
        return out + "</body></html>\n"
    }

    private static func number(_ value: JSON?, unit: String) -> String {
        guard let d = value?.doubleValue else { return "-" }
        return (d == d.rounded() ? String(Int(d)) : String(oneDecimal: d)) + unit
    }

    private static func percent(_ value: JSON?) -> String {
        guard let d = value?.doubleValue else { return "-" }
        return "\(Int((d * 100).rounded())) %"
    }
}

extension String {
    /// `d` with one decimal.
    fileprivate init(oneDecimal d: Double) {
        let tenths = Int((d * 10).rounded())
        self = "\(tenths / 10).\(abs(tenths % 10))"
    }
}
