import Foundation
import IsobarModel
import Testing

@testable import IsobarWire

@Suite("PrometheusParser: the text exposition format, line by line")
struct PrometheusParserTests {
    typealias Sample = PrometheusExposition.Sample

    @Test("HELP, TYPE, names with colons, labels with escapes, an empty label set and a trailing comma")
    func basics() {
        let text = #"""
            # HELP vllm:num_requests_running Number of requests in model execution batches.
            # TYPE vllm:num_requests_running gauge
            vllm:num_requests_running{engine="0",model_name="m"} 3.0
            # a free comment
            path_hits{path="C:\\dir\\",quote="say \"hi\"",lines="a\nb",} 7
            empty_set{} 1
            bare 2
              spaced  {  a = "x" ,  b="y"  }   4   
            """#
        let x = PrometheusParser.parse(text)
        #expect(x.problems.isEmpty)
        #expect(x.help["vllm:num_requests_running"] == "Number of requests in model execution batches.")
        #expect(x.types["vllm:num_requests_running"] == .gauge)
        #expect(
            x.samples == [
                Sample(name: "vllm:num_requests_running", labels: [("engine", "0"), ("model_name", "m")], value: 3),
                Sample(
                    name: "path_hits",
                    labels: [("path", #"C:\dir\"#), ("quote", #"say "hi""#), ("lines", "a\nb")],
                    value: 7
                ),
                Sample(name: "empty_set", value: 1),
                Sample(name: "bare", value: 2),
                Sample(name: "spaced", labels: [("a", "x"), ("b", "y")], value: 4),
            ]
        )
    }

    @Test("Values: NaN, +Inf, -Inf, exponents, signs, and decimals beyond the fast path")
    func values() {
        let text = """
            a NaN
            b +Inf
            c -Inf
            d 1.7537953269352946e+09
            e -3.5E-3
            f 0.007507552643049313
            g 8.128902e+06
            h +42
            i 123456789012345678901234567890
            j 0.1
            """
        let x = PrometheusParser.parse(text)
        #expect(x.problems.isEmpty)
        #expect(x.value("a")?.isNaN == true)
        #expect(x.value("b") == .infinity)
        #expect(x.value("c") == -.infinity)
        #expect(x.value("d") == 1.753_795_326_935_294_6e9)
        #expect(x.value("e") == -0.0035)
        #expect(x.value("f") == 0.007507552643049313)
        #expect(x.value("g") == 8_128_902)
        #expect(x.value("h") == 42)
        #expect(x.value("i") == 1.2345678901234568e29)
        #expect(x.value("j") == 0.1)
    }

    @Test("Timestamps: integer milliseconds (0.0.4) and decimal seconds (OpenMetrics)")
    func timestamps() {
        let x = PrometheusParser.parse("a 1 1712345678000\nb{x=\"y\"} 2 -5\nc 3 1712345678.5\n")
        #expect(x.problems.isEmpty)
        #expect(x.samples.map(\.timestamp) == [1_712_345_678_000, -5, 1_712_345_678_500])
    }

    @Test("Histograms and summaries: buckets, sums and counts belong to their family")
    func histogramsAndSummaries() {
        let x = PrometheusFixture.exposition("tgi.txt")
        #expect(x.problems.isEmpty)
        #expect(x.type(of: "tgi_request_generated_tokens_bucket") == .histogram)
        #expect(x.type(of: "tgi_request_generated_tokens_sum") == .histogram)
        #expect(x.type(of: "tgi_request_skipped_tokens") == .summary)
        #expect(x.type(of: "tgi_request_skipped_tokens_count") == .summary)
        #expect(x.value("tgi_request_generated_tokens_bucket", where: [("le", "+Inf")]) == 109)
        #expect(x.value("tgi_request_generated_tokens_bucket", where: [("le", "266.24")]) == 109)
        #expect(x.value("tgi_request_generated_tokens_bucket", where: [("le", "261.12")]) == 104)
        #expect(x.value("tgi_request_generated_tokens_sum") == 3423)
        #expect(x.value("tgi_request_skipped_tokens", where: [("quantile", "0.99")]) == 0)
        #expect(x.sum("tgi_batch_inference_count") == 1525)
        #expect(x.value("tgi_batch_forward_duration_sum", where: [("method", "decode")]) == 89.03133092599998)
        #expect(x.samples(named: "tgi_request_input_length_bucket").count == 101)
    }

    @Test("A bad line is skipped and reported with its number while every other line is read")
    func badLinesReported() {
        let text = """
            good_a 1
            unterminated{a="b" 1
            no_value
            9starts_with_digit 1
            bad-char 1
            value_garbage bogus
            windows_nan -nan(ind)
            unquoted{a=b} 1
            repeated{a="1",a="2"} 1
            # TYPE typed bogus_type
            extra 1 2 3
            good_b{x="y"} 2
            """
        let x = PrometheusParser.parse(text)
        #expect(x.samples.map(\.name) == ["good_a", "good_b"])
        #expect(x.problems.map(\.line) == Array(2...11))
        #expect(x.problems[0].message == "expected ',' or '}' in label set")
        #expect(x.problems[5].message == "windows_nan has an invalid value '-nan(ind)'")
        #expect(x.problems[8].message == "unknown metric type 'bogus_type' for typed")
    }

    @Test("# EOF ends an OpenMetrics exposition; UNIT lines and exemplars are accepted")
    func openMetrics() {
        let text = """
            # TYPE requests counter
            # UNIT requests_seconds seconds
            # HELP requests Requests.
            requests_total{code="200"} 1027 1520879607.789
            requests_created{code="200"} 1520879600
            # TYPE latency histogram
            latency_bucket{le="0.5"} 3 # {trace_id="KOO5S4vxi0o"} 0.67
            latency_bucket{le="+Inf"} 4 # {trace_id="oHg5SJYRHA0"} 9.8 1520879607.789
            # EOF
            after_eof 1
            """
        let x = PrometheusParser.parse(text)
        #expect(x.samples.map(\.name) == ["requests_total", "requests_created", "latency_bucket", "latency_bucket"])
        #expect(x.type(of: "requests_total") == .counter)
        #expect(x.samples[0].timestamp == 1_520_879_607_789)
        #expect(x.value("latency_bucket", where: [("le", "+Inf")]) == 4)
        #expect(x.problems == [PrometheusExposition.Problem(line: 10, message: "content after # EOF is ignored")])
    }

    @Test("Prometheus 3 quoted metric and label names")
    func quotedNames() {
        let x = PrometheusParser.parse(#"{"http.requests", "service.name"="api", code="200"} 5"#)
        #expect(x.problems.isEmpty)
        #expect(
            x.samples == [Sample(name: "http.requests", labels: [("service.name", "api"), ("code", "200")], value: 5)]
        )
    }

    @Test("HELP undoes \\\\ and \\n; CRLF line ends and blank lines are fine")
    func helpEscapesAndLineEnds() {
        let x = PrometheusParser.parse(
            "# HELP m Path C:\\\\x\\nsecond \"line\"\r\n\r\n# TYPE m counter\r\nm_total 1\r\n"
        )
        #expect(x.problems.isEmpty)
        #expect(x.help["m"] == "Path C:\\x\nsecond \"line\"")
        #expect(x.value("m_total") == 1)
    }

    @Test("A second TYPE or HELP for a family is reported and the first kept")
    func duplicateMetadata() {
        let x = PrometheusParser.parse("# TYPE a gauge\n# TYPE a counter\n# HELP a one\n# HELP a two\na 1\n")
        #expect(x.types["a"] == .gauge)
        #expect(x.help["a"] == "one")
        #expect(x.problems.map(\.line) == [2, 4])
    }

    @Test("Lookups: value with labels, sum across label sets, absent names are nil")
    func lookups() {
        let x = PrometheusFixture.exposition("vllm-v1.txt")
        #expect(x.problems.isEmpty)
        #expect(x.sum("vllm:num_requests_running") == 25)
        #expect(x.value("vllm:num_requests_running", where: [("engine", "1")]) == 11)
        #expect(x.sum("vllm:request_success_total", where: [("finished_reason", "stop")]) == 5188)
        #expect(x.value("vllm:absent") == nil)
        #expect(x.sum("vllm:absent") == nil)
        #expect(x.contains("vllm:cache_config_info"))
        #expect(x.samples(named: "vllm:cache_config_info").map { $0.label("num_gpu_blocks") } == ["27634", "27634"])
    }

    @Test("Round trip: what PrometheusText writes, the parser reads back exactly")
    func roundTrip() {
        let labelValues = [
            "plain", #"back\slash"#, #"a "quote""#, "line\nbreak", "crlf\r\nend", "e\u{301}t\u{e9} 🚀", "",
        ]
        let values: [Double] = [0, 1, -1, 0.1, 1e-9, 123_456_789.125, 6.02214076e23, .infinity, -.infinity, .nan]
        var text = PrometheusText()
        text.family("isobar_round_trip", .gauge, help: #"Help with \ and a"# + "\nnewline")
        var written: [Sample] = []
        for (i, label) in labelValues.enumerated() {
            for (j, value) in values.enumerated() {
                let labels = [("label", label), ("i", String(i * values.count + j))]
                text.sample("isobar_round_trip", labels, value)
                written.append(Sample(name: "isobar_round_trip", labels: labels, value: value))
            }
        }
        text.family("isobar_empty", .counter, help: "")
        text.sample("isobar_empty_total", [], 3)
        written.append(Sample(name: "isobar_empty_total", value: 3))
        let x = text.bytes.withUnsafeBytes { PrometheusParser.parse($0) }
        #expect(x.problems.isEmpty)
        #expect(x.samples == written)
        #expect(x.help["isobar_round_trip"] == #"Help with \ and a"# + "\nnewline")
        #expect(x.types == ["isobar_round_trip": .gauge, "isobar_empty": .counter])
    }

    @Test("Garbage never traps: random bytes, invalid UTF-8 and every prefix of a real exposition")
    func garbage() {
        var rng = Xoshiro256(seed: 4)
        let alphabet = Array(#"ab_:{}="\,# .e+-0123456789NaInf"#.utf8) + [0x0A, 0x0D, 0x09, 0x00, 0xFF, 0xC3]
        var parser = PrometheusParser()
        for _ in 0..<3000 {
            let bytes = (0..<Int.random(in: 0...200, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }
            let x = bytes.withUnsafeBytes { parser.parse($0) }
            #expect(x.problems.count <= PrometheusParser.maxProblems + 1)
        }
        let real = PrometheusFixture.bytes("sglang.txt")
        for end in stride(from: 0, through: real.count, by: 7) {
            _ = real[..<end].withUnsafeBytes { parser.parse($0) }
        }
    }

    @Test("A parser kept across scrapes builds each name and label string once")
    func interning() {
        var parser = PrometheusParser()
        let bytes = PrometheusFixture.bytes("vllm-v1.txt")
        let first = bytes.withUnsafeBytes { parser.parse($0) }
        let interned = parser.internedStrings
        let second = bytes.withUnsafeBytes { parser.parse($0) }
        #expect(parser.internedStrings == interned)
        #expect(first.samples == second.samples)
        #expect(interned < 400)
    }

    @Test("Speed: the 68 KB vLLM exposition (prints µs per parse; timed for real in release builds)")
    func speed() {
        let bytes = PrometheusFixture.bytes("vllm-v1.txt")
        var parser = PrometheusParser()
        let clock = ContinuousClock()
        let rounds = 200
        var samples = 0
        let elapsed = clock.measure {
            for _ in 0..<rounds { samples += bytes.withUnsafeBytes { parser.parse($0) }.samples.count }
        }
        let micros = elapsed.seconds * 1e6 / Double(rounds)
        print("PrometheusParser: \(bytes.count) bytes, \(samples / rounds) samples, \(Int(micros)) µs per parse")
        #expect(samples == rounds * 593)
    }
}

@Suite("PrometheusParser with a selection: only the named samples are read")
struct PrometheusSelectionTests {
    @Test("Selected samples and their families' TYPE and HELP are read; other lines, bad ones too, are skipped")
    func selection() {
        let text = """
            # HELP wanted_total Wanted.
            # TYPE wanted counter
            wanted_total{a="1"} 1
            wanted_total{a="2"} 2
            # HELP other_bucket Not wanted.
            # TYPE other histogram
            other_bucket{le="1"} 3
            other_bucket{le="+Inf"} 4
            other_bucket{broken 5
            wanted_totally 6
            wanted_total{a="3"} 3
            {"quoted.name"} 7
            """
        var parser = PrometheusParser()
        let x = Array(text.utf8).withUnsafeBytes {
            parser.parse($0, selecting: MetricSelection(["wanted_total"]))
        }
        #expect(x.samples.map(\.name) == ["wanted_total", "wanted_total", "wanted_total", "quoted.name"])
        #expect(x.sum("wanted_total") == 6)
        #expect(x.types == ["wanted": .counter])
        #expect(x.help == ["wanted_total": "Wanted."])
        #expect(x.problems.isEmpty)
    }
}
