import IsobarWire

/// A hand-written SVG document, built element by element. Coordinates print with one decimal and all
/// text is XML-escaped, so the output is compact, well-formed and the same on every run.
struct SVGDocument: Sendable {
    let width: Double
    let height: Double
    private var body: [String] = []

    init(width: Double, height: Double) {
        self.width = width
        self.height = height
    }

    /// The complete document, ending in a newline.
    var text: String {
        let w = Self.coordinate(width)
        let h = Self.coordinate(height)
        let open =
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(w)\" height=\"\(h)\" viewBox=\"0 0 \(w) \(h)\" "
            + "font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">"
        return ([open] + body + ["</svg>"]).joined(separator: "\n") + "\n"
    }

    /// A coordinate or length with one decimal, without a trailing `.0`.
    static func coordinate(_ value: Double) -> String {
        let text = ReportFormat.fixed(value, decimals: 1)
        return text.hasSuffix(".0") ? String(text.dropLast(2)) : text
    }

    private static func points(_ points: [(x: Double, y: Double)]) -> String {
        points.map { coordinate($0.x) + "," + coordinate($0.y) }.joined(separator: " ")
    }

    mutating func rect(x: Double, y: Double, width: Double, height: Double, fill: String, stroke: String? = nil) {
        let strokeAttribute = stroke.map { " stroke=\"\($0)\"" } ?? ""
        body.append(
            "<rect x=\"\(Self.coordinate(x))\" y=\"\(Self.coordinate(y))\" width=\"\(Self.coordinate(width))\" "
                + "height=\"\(Self.coordinate(height))\" fill=\"\(fill)\"\(strokeAttribute)/>"
        )
    }

    mutating func line(
        from start: (x: Double, y: Double),
        to end: (x: Double, y: Double),
        stroke: String,
        width: Double = 1,
        dash: String? = nil
    ) {
        let dashAttribute = dash.map { " stroke-dasharray=\"\($0)\"" } ?? ""
        body.append(
            "<line x1=\"\(Self.coordinate(start.x))\" y1=\"\(Self.coordinate(start.y))\" "
                + "x2=\"\(Self.coordinate(end.x))\" y2=\"\(Self.coordinate(end.y))\" stroke=\"\(stroke)\" "
                + "stroke-width=\"\(Self.coordinate(width))\"\(dashAttribute)/>"
        )
    }

    mutating func polyline(_ points: [(x: Double, y: Double)], stroke: String, width: Double, opacity: Double = 1) {
        guard !points.isEmpty else { return }
        let opacityAttribute = opacity < 1 ? " stroke-opacity=\"\(ReportFormat.fixed(opacity, decimals: 2))\"" : ""
        body.append(
            "<polyline fill=\"none\" stroke=\"\(stroke)\" stroke-width=\"\(Self.coordinate(width))\" "
                + "stroke-linejoin=\"round\"\(opacityAttribute) points=\"\(Self.points(points))\"/>"
        )
    }

    mutating func polygon(_ points: [(x: Double, y: Double)], fill: String, opacity: Double) {
        guard !points.isEmpty else { return }
        body.append(
            "<polygon fill=\"\(fill)\" fill-opacity=\"\(ReportFormat.fixed(opacity, decimals: 2))\" stroke=\"none\" "
                + "points=\"\(Self.points(points))\"/>"
        )
    }

    /// Text at a point. `anchor` is `start`, `middle` or `end`; `rotation` turns it about the point.
    mutating func text(
        _ content: String,
        x: Double,
        y: Double,
        size: Double = 12,
        anchor: String = "start",
        bold: Bool = false,
        fill: String = "#222",
        rotation: Double = 0
    ) {
        var attributes = "x=\"\(Self.coordinate(x))\" y=\"\(Self.coordinate(y))\""
        if size != 12 { attributes += " font-size=\"\(Self.coordinate(size))\"" }
        if anchor != "start" { attributes += " text-anchor=\"\(anchor)\"" }
        if bold { attributes += " font-weight=\"bold\"" }
        attributes += " fill=\"\(fill)\""
        if rotation != 0 {
            attributes +=
                " transform=\"rotate(\(Self.coordinate(rotation)) \(Self.coordinate(x)) \(Self.coordinate(y)))\""
        }
        body.append("<text \(attributes)>\(content.xmlEscaped)</text>")
    }
}
