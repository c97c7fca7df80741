import Foundation
import SwarmProtocol

/// How long each synthetic agent runs, in seconds: `uniform:MIN-MAX`, `fixed:S` or
/// `lognormal:MEDIAN,SIGMA` (`--agent-duration`). Samples are clamped to
/// [`minimumSeconds`, `maximumSeconds`] and reproducible for a given seed.
public enum DurationDistribution: Equatable, Sendable, CustomStringConvertible {
    case uniform(min: Double, max: Double)
    case fixed(Double)
    /// exp(N(ln median, sigma^2)): most runs near the median, a long tail of slow ones.
    case lognormal(median: Double, sigma: Double)

    public static let minimumSeconds = 0.05
    public static let maximumSeconds = 600.0
    /// The forms, for error messages and help text.
    public static let syntax = "uniform:MIN-MAX, fixed:S or lognormal:MEDIAN,SIGMA (seconds)"

    /// Parses `text`; throws a `DurationDistributionError` whose description is one CLI line.
    public init(parsing text: String) throws(DurationDistributionError) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let colon = trimmed.firstIndex(of: ":") else {
            throw DurationDistributionError(text, "expected \(Self.syntax)")
        }
        let kind = trimmed[..<colon].lowercased()
        let args = String(trimmed[trimmed.index(after: colon)...])
        func number(_ s: Substring, _ what: String) throws(DurationDistributionError) -> Double {
            let part = s.trimmingCharacters(in: .whitespaces)
            guard let v = Double(part), v.isFinite else {
                throw DurationDistributionError(text, "\(what) '\(part)' is not a number")
            }
            guard v >= 0 else { throw DurationDistributionError(text, "\(what) must not be negative") }
            return v
        }
        func two(_ separator: Character, _ names: (String, String)) throws(DurationDistributionError) -> (Double, Double) {
            let parts = args.split(separator: separator, omittingEmptySubsequences: false)
            guard parts.count == 2 else {
                throw DurationDistributionError(text, "\(kind) takes \(names.0)\(separator)\(names.1)")
            }
            return (try number(parts[0], names.0), try number(parts[1], names.1))
        }
        switch kind {
        case "uniform":
            let (lo, hi) = try two("-", ("MIN", "MAX"))
            guard lo <= hi else { throw DurationDistributionError(text, "MIN (\(lo)) is over MAX (\(hi))") }
            self = .uniform(min: lo, max: hi)
        case "fixed":
            self = .fixed(try number(Substring(args), "S"))
        case "lognormal":
            let (median, sigma) = try two(",", ("MEDIAN", "SIGMA"))
            guard median > 0 else { throw DurationDistributionError(text, "MEDIAN must be more than 0") }
            guard sigma <= 5 else { throw DurationDistributionError(text, "SIGMA \(sigma) is over 5") }
            self = .lognormal(median: median, sigma: sigma)
        default:
            throw DurationDistributionError(text, "unknown distribution '\(kind)'; expected \(Self.syntax)")
        }
    }

    /// The text form, parseable again.
    public var description: String {
        func f(_ v: Double) -> String {
            v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : String(v)
        }
        switch self {
        case .uniform(let lo, let hi): return "uniform:\(f(lo))-\(f(hi))"
        case .fixed(let s): return "fixed:\(f(s))"
        case .lognormal(let m, let s): return "lognormal:\(f(m)),\(f(s))"
        }
    }

    /// A value clamped to [minimumSeconds, maximumSeconds].
    public static func clamp(_ seconds: Double) -> Double {
        guard seconds.isFinite else { return maximumSeconds }
        return Swift.min(maximumSeconds, Swift.max(minimumSeconds, seconds))
    }

    /// One sample, clamped.
    public func sample<G: RandomNumberGenerator>(using generator: inout G) -> Double {
        switch self {
        case .fixed(let s):
            return Self.clamp(s)
        case .uniform(let lo, let hi):
            return Self.clamp(lo + (hi - lo) * Self.unit(&generator))
        case .lognormal(let median, let sigma):
            // Box-Muller; 1 - u keeps the logarithm's argument in (0, 1].
            let u1 = 1 - Self.unit(&generator)
            let u2 = Self.unit(&generator)
            let z = (-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2)
            return Self.clamp(median * Foundation.exp(sigma * z))
        }
    }

    /// `count` samples from a generator seeded with `seed`: the same list every time.
    public func samples(_ count: Int, seed: UInt64) -> [Double] {
        var generator = SplitMix64(seed: seed)
        return (0..<Swift.max(0, count)).map { _ in sample(using: &generator) }
    }

    /// A uniform double in [0, 1) from the top 53 bits (independent of the standard
    /// library's own `random(in:using:)`, so samples stay the same across Swift versions).
    static func unit<G: RandomNumberGenerator>(_ generator: inout G) -> Double {
        Double(generator.next() >> 11) * 0x1p-53
    }
}

/// A distribution that did not parse: `description` is a ready CLI error line.
public struct DurationDistributionError: Error, Equatable, CustomStringConvertible {
    public var input: String
    public var reason: String

    public init(_ input: String, _ reason: String) {
        self.input = input
        self.reason = reason
    }

    public var description: String { "invalid agent duration '\(input)': \(reason)" }
}
