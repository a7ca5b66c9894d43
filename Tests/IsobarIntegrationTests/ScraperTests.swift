import Foundation
import IsobarGateway
import IsobarModel
import IsobarWire
import NIOHTTP1
import Synchronization
import Testing

@Suite("Metrics scraper on loopback")
struct ScraperTests {
    /// A real exposition from the wire tests' fixtures.
    static func fixture(_ name: String) -> [UInt8] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("IsobarWireTests/Fixtures/\(name)")
        return Array(FileManager.default.contents(atPath: url.path) ?? Data())
    }

    static func serve(_ bytes: [UInt8], status: HTTPResponseStatus = .ok) -> FaultUpstream.Behaviour {
        { _, writer, _ in
            writer.respond(status: status, headers: ["content-type": "text/plain; version=0.0.4"], bytes: bytes)
        }
    }

    static let completion: FaultUpstream.Behaviour = { _, writer, _ in
        Upstream.json(writer, Upstream.completion(model: "m"))
    }

    static func topology(_ backends: [(name: String, engine: String, port: Int)]) throws -> Topology {
        try Harness.topology(
            Harness.yaml(
                backends: backends.map {
                    "  - {name: \($0.name), region: local, engine: \($0.engine), url: \"http://127.0.0.1:\($0.port)\", models: [m]}"
                }.joined(separator: "\n"),
                models: "  - {name: chat, deployments: [{backend: \(backends[0].name), model: m}]}"
            )
        )
    }

    /// The node's own /metrics, parsed.
    static func nodeMetrics(_ port: Int) async throws -> PrometheusExposition {
        let response = try await TestHTTPClient.send(port: port, method: .GET, path: "/metrics", group: Harness.group)
        return PrometheusParser.parse(response.text)
    }

    static func scraped(_ x: PrometheusExposition, _ backend: String, _ metric: String) -> Double? {
        x.value("isobar_backend_scraped", where: [("backend", backend), ("metric", metric)])
    }

    static func scrapes(_ x: PrometheusExposition, _ backend: String, _ outcome: String) -> Double {
        x.value("isobar_scrapes_total", where: [("backend", backend), ("outcome", outcome)]) ?? 0
    }

    @Test("A vLLM backend's /metrics is scraped and its load shows in the node's /metrics")
    func scrapesVLLM() async throws {
        let upstream = FaultUpstream(metrics: Self.serve(Self.fixture("vllm-v1.txt")), Self.completion)
        try await Harness.withUpstreams([upstream]) { ports in
            try await Harness.withGateway(try Self.topology([("vllm-a", "vllm", ports[0])])) { port in
                let seen = try await Harness.eventually(timeout: .seconds(5)) {
                    Self.scraped(try await Self.nodeMetrics(port), "vllm-a", "running") != nil
                }
                #expect(seen)
                let x = try await Self.nodeMetrics(port)
                #expect(Self.scraped(x, "vllm-a", "running") == 25)
                #expect(Self.scraped(x, "vllm-a", "waiting") == 2)
                #expect(Self.scraped(x, "vllm-a", "kv_usage") == (0.387_145_996_093_75 + 0.295_410_156_25) / 2)
                #expect(Self.scrapes(x, "vllm-a", "ok") >= 1)
                let age = try #require(x.value("isobar_backend_scrape_age_seconds", where: [("backend", "vllm-a")]))
                #expect(age >= 0 && age < 1)
                #expect(upstream.received.isEmpty)
            }
        }
    }

    @Test("vLLM and SGLang are asked for just the samples read (name[] filter); TGI gets the plain path")
    func restrictedScrapes() async throws {
        let uris = Mutex<[String: String]>([:])
        func recording(_ name: String, _ fixture: String) -> FaultUpstream {
            FaultUpstream(
                metrics: { request, writer, index in
                    uris.withLock { $0[name] = request.head.uri }
                    Self.serve(Self.fixture(fixture))(request, writer, index)
                },
                Self.completion
            )
        }
        let upstreams = [
            recording("vllm", "vllm-v1.txt"), recording("sglang", "sglang.txt"), recording("tgi", "tgi.txt"),
        ]
        try await Harness.withUpstreams(upstreams) { ports in
            let topology = try Self.topology([
                ("vllm", "vllm", ports[0]), ("sglang", "sglang", ports[1]), ("tgi", "tgi", ports[2]),
            ])
            try await Harness.withGateway(topology, scraping: ScraperConfiguration(interval: .milliseconds(50))) {
                port in
                let seen = try await Harness.eventually(timeout: .seconds(5)) {
                    let x = try await Self.nodeMetrics(port)
                    return Self.scraped(x, "vllm", "waiting") == 2 && Self.scraped(x, "sglang", "waiting") == 2826
                        && Self.scraped(x, "tgi", "waiting") != nil
                }
                #expect(seen)
            }
        }
        let asked = uris.withLock { $0 }
        let vllm = try #require(asked["vllm"])
        #expect(
            vllm.hasPrefix("/metrics?name%5B%5D=vllm%3Anum_requests_waiting&name%5B%5D=vllm%3Anum_requests_running")
        )
        #expect(vllm.contains("name%5B%5D=vllm%3Akv_cache_usage_perc&name%5B%5D=vllm%3Agpu_cache_usage_perc"))
        #expect(try #require(asked["sglang"]).hasPrefix("/metrics?name%5B%5D=sglang%3Anum_queue_reqs"))
        #expect(asked["tgi"] == "/metrics")
    }

    @Test("The emulator's vLLM-named metrics are scraped: requests queued behind its batch cap show up")
    func scrapesEmulator() async throws {
        try await Harness.withEmulator(EmulatorTests.configuration(step: 0.05, seqs: 1)) { emulator in
            let topology = try Self.topology([("emu", "vllm", emulator)])
            try await Harness.withGateway(topology, scraping: ScraperConfiguration(interval: .milliseconds(50))) {
                port in
                try await withThrowingTaskGroup(of: Void.self) { requests in
                    for _ in 0..<3 {
                        requests.addTask {
                            _ = try await TestHTTPClient.send(
                                port: emulator,
                                path: "/v1/chat/completions",
                                body: chatBody(model: "m", maxTokens: 20),
                                group: Harness.group
                            )
                        }
                    }
                    let queued = try await Harness.eventually(timeout: .seconds(3)) {
                        let x = try await Self.nodeMetrics(port)
                        return Self.scraped(x, "emu", "waiting") == 2 && Self.scraped(x, "emu", "running") == 1
                    }
                    #expect(queued)
                    try await requests.waitForAll()
                }
                let x = try await Self.nodeMetrics(port)
                #expect(Self.scraped(x, "emu", "kv_usage") != nil)
            }
        }
    }

    @Test("A target that hangs or answers 500 is counted and does not stall the others")
    func failingTargets() async throws {
        let hanging = FaultUpstream(metrics: { _, _, _ in }, Self.completion)
        let failing = FaultUpstream(
            metrics: Self.serve(Array("boom".utf8), status: .internalServerError),
            Self.completion
        )
        let garbage = FaultUpstream(metrics: Self.serve(Array("<html>not metrics</html>".utf8)), Self.completion)
        let healthy = FaultUpstream(metrics: Self.serve(Self.fixture("sglang.txt")), Self.completion)
        let scraping = ScraperConfiguration(
            interval: .milliseconds(100),
            timeout: .milliseconds(300),
            maxConcurrentScrapes: 2
        )
        try await Harness.withUpstreams([hanging, failing, garbage, healthy]) { ports in
            let topology = try Self.topology([
                ("hanging", "vllm", ports[0]), ("failing", "vllm", ports[1]), ("garbage", "vllm", ports[2]),
                ("healthy", "sglang", ports[3]),
            ])
            try await Harness.withGateway(topology, scraping: scraping) { port in
                let settled = try await Harness.eventually(timeout: .seconds(5)) {
                    let x = try await Self.nodeMetrics(port)
                    return Self.scrapes(x, "hanging", "timeout") >= 2 && Self.scrapes(x, "healthy", "ok") >= 8
                }
                #expect(settled)
                let x = try await Self.nodeMetrics(port)
                #expect(Self.scrapes(x, "failing", "error") >= 4)
                #expect(Self.scrapes(x, "garbage", "malformed") >= 4)
                #expect(Self.scraped(x, "healthy", "waiting") == 2826)
                #expect(Self.scraped(x, "healthy", "generation_tps") == 86.508_141_777_269_02)
                for backend in ["hanging", "failing", "garbage"] {
                    #expect(Self.scraped(x, backend, "running") == nil)
                    #expect(Self.scrapes(x, backend, "ok") == 0)
                }
            }
        }
    }

    @Test("llama.cpp: /slots fills in when /metrics is off, and is not asked again once it 404s")
    func llamaCppSlots() async throws {
        let slotsAsked = Mutex<Int>(0)
        let slotsOnly = FaultUpstream(
            metrics: { request, writer, _ in
                if request.path == "/slots" {
                    Self.serve(Self.fixture("llamacpp-slots.json"))(request, writer, 0)
                } else {
                    writer.respond(status: .notImplemented, headers: [:], bytes: Array("metrics off".utf8))
                }
            },
            Self.completion
        )
        let metricsOnly = FaultUpstream(
            metrics: { request, writer, _ in
                if request.path == "/slots" {
                    slotsAsked.withLock { $0 += 1 }
                    writer.respond(status: .notFound, headers: [:], bytes: [])
                } else {
                    Self.serve(Self.fixture("llamacpp.txt"))(request, writer, 0)
                }
            },
            Self.completion
        )
        let scraping = ScraperConfiguration(interval: .milliseconds(50))
        try await Harness.withUpstreams([slotsOnly, metricsOnly]) { ports in
            let topology = try Self.topology([("slots", "llamacpp", ports[0]), ("metrics", "llamacpp", ports[1])])
            try await Harness.withGateway(topology, scraping: scraping) { port in
                let settled = try await Harness.eventually(timeout: .seconds(5)) {
                    Self.scrapes(try await Self.nodeMetrics(port), "metrics", "ok") >= 5
                }
                #expect(settled)
                let x = try await Self.nodeMetrics(port)
                #expect(Self.scraped(x, "slots", "running") == 2)
                #expect(Self.scraped(x, "metrics", "kv_usage") == 0.491063)
                #expect(slotsAsked.withLock { $0 } == 1)
            }
        }
    }

    @Test("TensorRT-LLM: a JSON /metrics (trtllm-serve) moves the scraper to /prometheus/metrics")
    func trtllmServePath() async throws {
        let upstream = FaultUpstream(metrics: Self.serve(Array("[]".utf8))) { request, writer, _ in
            if request.path == "/prometheus/metrics" {
                Self.serve(Self.fixture("trtllm-triton.txt"))(request, writer, 0)
            } else {
                Self.completion(request, writer, 0)
            }
        }
        try await Harness.withUpstreams([upstream]) { ports in
            try await Harness.withGateway(try Self.topology([("trt", "trtllm", ports[0])])) { port in
                let seen = try await Harness.eventually(timeout: .seconds(5)) {
                    Self.scraped(try await Self.nodeMetrics(port), "trt", "waiting") == 1
                }
                #expect(seen)
                #expect(upstream.scrapeCount == 1)
            }
        }
    }
}
