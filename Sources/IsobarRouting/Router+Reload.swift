import IsobarModel

extension Router {
    /// Takes over what `previous` (the router of the topology before a reload) learned: for each backend
    /// both know with the same definition, its scraped sample, learned rates, observed latencies, prefix
    /// index, breaker and pause; each model's learned prompt and output lengths; the peers' gossip reports
    /// and the session pins. Requests in flight are not taken over: they finish on `previous`, which
    /// keeps their ledger, so this router starts with an empty ledger for every endpoint.
    public mutating func adopt(_ previous: Router) {
        for i in endpoints.indices {
            guard let j = previous.backendIndex[endpoints[i].backend.name],
                previous.endpoints[j].backend == endpoints[i].backend
            else { continue }
            var kept = previous.endpoints[j]
            kept.requests = 0
            kept.awaitingFirstToken = 0
            kept.prefillTokens = 0
            kept.decodeStreams = 0
            kept.decodeTokens = 0
            kept.kvTokens = 0
            endpoints[i] = kept
        }
        for (model, i) in groupIndex {
            guard let j = previous.groupIndex[model] else { continue }
            groups[i].outputLengths = previous.groups[j].outputLengths
            groups[i].promptLengths = previous.groups[j].promptLengths
        }
        peers = previous.peers
        livePeers = previous.livePeers
        hopRefused = previous.hopRefused
        sessions = previous.sessions
    }
}
