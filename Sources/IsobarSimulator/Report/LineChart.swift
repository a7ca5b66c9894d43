/// A line chart of one or more stacked panels sharing a title, drawn as SVG: each panel has a
/// frame, grid, ticks, axis labels with units, optional min-max bands, lines, dashed reference lines
/// and a legend at its right.
struct LineChart: Sendable {
    /// One line; `name` is its legend entry.
    struct Series: Sendable {
        var name: String
        var color: String
        var points: [(x: Double, y: Double)]
        var width = 1.5
    }

    /// A shaded range between a lower and an upper line over the same x values.
    struct Band: Sendable {
        var name: String
        var color: String
        var lower: [(x: Double, y: Double)]
        var upper: [(x: Double, y: Double)]
    }

    /// A dashed reference line across the panel at a data value, with a short label.
    struct Guide: Sendable {
        enum Axis: Sendable {
            case x
            case y
        }

        var axis: Axis
        var value: Double
        var label: String
        var color = "#888"
    }

    /// One plot area with its own axes and legend; `height` is the plot area's, in pixels.
    struct Panel: Sendable {
        var title: String?
        var xLabel: String
        var yLabel: String
        var x: ChartScale
        var y: ChartScale
        var height = 340.0
        var bands: [Band] = []
        var series: [Series] = []
        var guides: [Guide] = []
        /// Shown in the middle of an empty panel.
        var emptyNote: String?

        /// Room above the plot for the panel title.
        var titleSpace: Double { title == nil ? 0 : 22 }
    }

    var title: String
    var subtitle: String?
    /// A second line under the subtitle, saying how to read the chart.
    var note: String?
    var panels: [Panel]

    static let width = 960.0
    static let left = 76.0
    static let plotWidth = 640.0
    static let legendWidth = 220.0
    static let top = 70.0
    static let panelGap = 74.0

    /// The chart as an SVG document.
    var svg: String {
        let top = Self.top + (note == nil ? 0 : 16)
        let height = top + panels.map { $0.height + $0.titleSpace + Self.panelGap }.reduce(0, +) - 20
        var document = SVGDocument(width: Self.width, height: height)
        document.rect(x: 0, y: 0, width: Self.width, height: height, fill: "#ffffff")
        document.text(title, x: Self.left, y: 28, size: 17, bold: true)
        if let subtitle { document.text(subtitle, x: Self.left, y: 48, size: 12, fill: "#555") }
        if let note { document.text(note, x: Self.left, y: 64, size: 12, fill: "#555") }
        var y = top
        for panel in panels {
            draw(panel, top: y + panel.titleSpace, into: &document)
            y += panel.height + panel.titleSpace + Self.panelGap
        }
        return document.text
    }

    private func draw(_ panel: Panel, top: Double, into document: inout SVGDocument) {
        let frame = Frame(left: Self.left, top: top, width: Self.plotWidth, height: panel.height)
        if let title = panel.title { document.text(title, x: frame.left, y: top - 8, size: 13, bold: true) }
        document.rect(x: frame.left, y: frame.top, width: frame.width, height: frame.height, fill: "#fbfbfb")
        drawGrid(panel, frame, into: &document)
        for band in panel.bands {
            let upper = band.upper.map { frame.point($0, panel) }
            let lower = band.lower.reversed().map { frame.point($0, panel) }
            document.polygon(upper + lower, fill: band.color, opacity: 0.3)
        }
        for series in panel.series {
            document.polyline(series.points.map { frame.point($0, panel) }, stroke: series.color, width: series.width)
        }
        for guide in panel.guides {
            let at = guide.axis == .x ? frame.x(guide.value, panel) : frame.y(guide.value, panel)
            if guide.axis == .x {
                document.line(
                    from: (at, frame.top),
                    to: (at, frame.bottom),
                    stroke: guide.color,
                    width: 1.2,
                    dash: "6 4"
                )
                let leftOfLine = at > frame.left + frame.width * 0.75
                document.text(
                    guide.label,
                    x: leftOfLine ? at - 4 : at + 4,
                    y: frame.bottom - 8,
                    size: 11,
                    anchor: leftOfLine ? "end" : "start",
                    fill: guide.color
                )
            } else {
                document.line(from: (frame.left, at), to: (frame.right, at), stroke: guide.color, dash: "4 4")
                document.text(guide.label, x: frame.left + 4, y: at - 4, size: 11, fill: guide.color)
            }
        }
        if let note = panel.emptyNote {
            document.text(note, x: frame.left + frame.width / 2, y: frame.top + frame.height / 2, anchor: "middle")
        }
        document.rect(
            x: frame.left,
            y: frame.top,
            width: frame.width,
            height: frame.height,
            fill: "none",
            stroke: "#666"
        )
        document.text(panel.xLabel, x: frame.left + frame.width / 2, y: frame.bottom + 36, anchor: "middle")
        document.text(
            panel.yLabel,
            x: 20,
            y: frame.top + frame.height / 2,
            anchor: "middle",
            rotation: -90
        )
        drawLegend(panel, frame, into: &document)
    }

    private func drawGrid(_ panel: Panel, _ frame: Frame, into document: inout SVGDocument) {
        for tick in panel.x.ticks() {
            let x = frame.x(tick.value, panel)
            document.line(from: (x, frame.top), to: (x, frame.bottom), stroke: tick.major ? "#dddddd" : "#eeeeee")
            document.line(from: (x, frame.bottom), to: (x, frame.bottom + 5), stroke: "#666")
            if tick.major { document.text(tick.label, x: x, y: frame.bottom + 18, anchor: "middle") }
        }
        for tick in panel.y.ticks() {
            let y = frame.y(tick.value, panel)
            document.line(from: (frame.left, y), to: (frame.right, y), stroke: tick.major ? "#dddddd" : "#eeeeee")
            document.line(from: (frame.left - 5, y), to: (frame.left, y), stroke: "#666")
            if tick.major { document.text(tick.label, x: frame.left - 8, y: y + 4, anchor: "end") }
        }
    }

    private func drawLegend(_ panel: Panel, _ frame: Frame, into document: inout SVGDocument) {
        let x = frame.right + 18
        var y = frame.top + 8
        for band in panel.bands {
            let swatch = [(x: x, y: y - 6), (x: x + 22, y: y - 6), (x: x + 22, y: y + 6), (x: x, y: y + 6)]
            document.polygon(swatch, fill: band.color, opacity: 0.3)
            document.text(ReportFormat.truncated(band.name, to: 30), x: x + 30, y: y + 4)
            y += 20
        }
        for series in panel.series {
            document.line(from: (x, y), to: (x + 22, y), stroke: series.color, width: max(2, series.width))
            document.text(ReportFormat.truncated(series.name, to: 30), x: x + 30, y: y + 4)
            y += 20
        }
    }
}

/// The plot area of a panel in SVG coordinates.
private struct Frame {
    var left: Double
    var top: Double
    var width: Double
    var height: Double

    var right: Double { left + width }
    var bottom: Double { top + height }

    func x(_ value: Double, _ panel: LineChart.Panel) -> Double { left + panel.x.fraction(value) * width }
    func y(_ value: Double, _ panel: LineChart.Panel) -> Double { bottom - panel.y.fraction(value) * height }
    func point(_ p: (x: Double, y: Double), _ panel: LineChart.Panel) -> (x: Double, y: Double) {
        (x(p.x, panel), y(p.y, panel))
    }
}
