import IsobarModel
import Testing

@Suite("Addresses and URLs")
struct AddressTests {
    @Test(
        "host:port forms a topology may use",
        arguments: [
            ("127.0.0.1:8080", "127.0.0.1", 8080),
            ("[::1]:9000", "::1", 9000),
            ("gw-1.example.com:443", "gw-1.example.com", 443),
            ("localhost:0", "localhost", 0),
        ]
    )
    func parsesHostPort(text: String, host: String, port: Int) throws {
        let parsed = try HostPort.parse(text).get()
        #expect(parsed == HostPort(host: host, port: port))
        #expect(parsed.description == text)
    }

    @Test(
        "bad addresses are refused with a reason",
        arguments: [
            ("8080", "HOST:PORT"), ("127.0.0.1:99999", "0 to 65535"), ("::1:80", "brackets"),
            ("[::1:80", "']'"), ("300.1.1.1:80", "IPv4"), (":80", "empty host"), ("bad_host!:80", "host name"),
            ("-lead.example:80", "host name"),
        ]
    )
    func refusesBadAddresses(text: String, reason: String) {
        guard case .failure(let error) = HostPort.parse(text) else {
            Issue.record("\(text) parsed")
            return
        }
        #expect(error.message.contains(reason), "\(text): \(error.message)")
    }

    @Test("loopback detection")
    func loopback() throws {
        #expect(try HostPort.parse("127.0.0.5:1").get().isLoopback)
        #expect(try HostPort.parse("[::1]:1").get().isLoopback)
        #expect(try HostPort.parse("localhost:1").get().isLoopback)
        #expect(!(try HostPort.parse("10.0.0.1:1").get().isLoopback))
    }

    @Test("upstream URLs: scheme, default ports, base path, Host header")
    func upstreamURLs() throws {
        let openai = try UpstreamURL.parse("https://api.openai.com").get()
        #expect(openai == UpstreamURL(tls: true, host: "api.openai.com", port: 443, basePath: ""))
        #expect(openai.hostHeader == "api.openai.com")
        #expect(openai.path("/v1/chat/completions") == "/v1/chat/completions")

        let vllm = try UpstreamURL.parse("http://10.0.0.5:8000/").get()
        #expect(vllm.hostHeader == "10.0.0.5:8000")
        #expect(vllm.basePath == "")

        // A base URL that already names /v1 is not doubled.
        let proxy = try UpstreamURL.parse("https://llm.corp/openai/v1").get()
        #expect(proxy.path("/v1/chat/completions") == "/openai/v1/chat/completions")
        #expect(proxy.description == "https://llm.corp/openai/v1")

        let v6 = try UpstreamURL.parse("http://[::1]:9000").get()
        #expect(v6.hostHeader == "[::1]:9000")
    }

    @Test(
        "upstream URLs that cannot be used are refused",
        arguments: [
            "ftp://x", "api.openai.com", "https://user:pw@host", "http://host/?q=1", "http://host:0", "http://:80",
        ]
    )
    func refusesBadURLs(text: String) {
        guard case .failure = UpstreamURL.parse(text) else {
            Issue.record("\(text) parsed")
            return
        }
    }
}

@Suite("Time and randomness")
struct ClockAndRandomTests {
    @Test("instants and durations add up exactly")
    func instants() {
        let t = Instant(nanoseconds: 1_000)
        #expect(t + .milliseconds(2) == Instant(nanoseconds: 2_001_000))
        #expect((t + .seconds(3)) - t == .seconds(3))
        #expect(Duration.milliseconds(1.5).nanoseconds == 1_500_000)
        #expect(Duration.seconds(2).milliseconds == 2000)
        #expect(Duration.seconds(Int64.max).nanoseconds == .max)
    }

    @Test("a seeded generator repeats its sequence and seeds differ")
    func seededGenerators() {
        var a = Xoshiro256(seed: 42)
        var b = Xoshiro256(seed: 42)
        var c = Xoshiro256(seed: 43)
        let first = (0..<100).map { _ in a.next() }
        #expect(first == (0..<100).map { _ in b.next() })
        #expect(first != (0..<100).map { _ in c.next() })
        // Uniform enough for routing: each of 8 buckets gets 1/8 of draws within 2 %.
        var counts = Array(repeating: 0, count: 8)
        for _ in 0..<80_000 { counts[Int(a.next() >> 61)] += 1 }
        #expect(counts.allSatisfy { abs($0 - 10_000) < 200 })
    }
}
