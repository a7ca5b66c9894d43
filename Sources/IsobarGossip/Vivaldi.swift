import IsobarModel
import RealModule

/// A Vivaldi network coordinate (Dabek, Cox, Kaashoek, Morris, "Vivaldi: A Decentralized Network Coordinate
/// System", SIGCOMM 2004): a point in 8-dimensional Euclidean space plus a height (the paper's height
/// vectors: the access-link delay every path from the node pays), in seconds. The distance between two
/// coordinates estimates the RTT between their nodes without measuring it.
public struct VivaldiCoordinate: Sendable, Equatable {
    public static let dimensions = 8

    public var vector: [Double]
    public var height: Double
    /// The node's confidence in its coordinate: the moving average of relative prediction error, 0–1.5.
    public var error: Double

    /// The origin, with full uncertainty: where every node starts.
    public init() {
        vector = Array(repeating: 0, count: Self.dimensions)
        height = Self.minimumHeight
        error = Self.maximumError
    }

    public init(vector: [Double], height: Double, error: Double) {
        precondition(vector.count == Self.dimensions, "a Vivaldi vector has \(Self.dimensions) dimensions")
        self.vector = vector
        self.height = height
        self.error = error
    }

    static let maximumError = 1.5
    static let minimumHeight = 10e-6
    /// Weight of a sample in the error average (the paper's c_e) and step size (c_c).
    static let errorGain = 0.25
    static let stepGain = 0.25

    /// Estimated RTT to `other`, in seconds.
    public func distance(to other: VivaldiCoordinate) -> Double {
        var sum = 0.0
        for i in 0..<Self.dimensions {
            let d = vector[i] - other.vector[i]
            sum += d * d
        }
        return sum.squareRoot() + height + other.height
    }

    /// Moves the coordinate after measuring `rtt` seconds to a node at `other` (the paper's adaptive
    /// timestep: a confident node moves less, and trusts a confident peer more). Samples that are not
    /// positive and finite are ignored.
    public mutating func update(rtt: Double, other: VivaldiCoordinate, rng: inout some RandomNumberGenerator) {
        guard rtt.isFinite, rtt > 0, other.vector.count == Self.dimensions else { return }
        let predicted = distance(to: other)
        let totalError = max(error + other.error, 1e-9)
        let weight = error / totalError
        let relative = abs(predicted - rtt) / rtt
        error = min(Self.maximumError, Self.errorGain * weight * relative + error * (1 - Self.errorGain * weight))
        let force = Self.stepGain * weight * (rtt - predicted)
        var direction = (0..<Self.dimensions).map { vector[$0] - other.vector[$0] }
        var magnitude = direction.reduce(0) { $0 + $1 * $1 }.squareRoot()
        if magnitude < 1e-9 {
            // Same point: push apart in a random direction.
            direction = (0..<Self.dimensions).map { _ in Double.random(in: -1...1, using: &rng) }
            let length = max(direction.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-9)
            direction = direction.map { $0 / length }
            magnitude = 0
        } else {
            direction = direction.map { $0 / magnitude }
        }
        for i in 0..<Self.dimensions { vector[i] += direction[i] * force }
        if magnitude > 1e-9 {
            height = max(Self.minimumHeight, height + (height + other.height) * force / magnitude)
        }
        if !vector.allSatisfy(\.isFinite) || !height.isFinite { self = VivaldiCoordinate() }
    }
}
