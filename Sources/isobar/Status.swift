import ArgumentParser
import Foundation
import IsobarGateway
import IsobarModel
import IsobarWire
import NIOPosix

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the mesh as one node sees it: regions, nodes, backends, health and load."
    )

    @Option(help: "The node's HTTP address.")
    var node: String = "http://127.0.0.1:8080"

    @Flag(help: "Print the node's JSON (/v1/mesh and every region's health) instead of tables.")
    var json = false

    func validate() throws {
        if case .failure(let error) = UpstreamURL.parse(node) { throw ValidationError("--node: \(error)") }
    }

    func run() async throws {
        let base = try UpstreamURL.parse(node).get()
        let group = MultiThreadedEventLoopGroup.singleton
        func get(_ path: String) async throws -> JSON {
            var url = base
            url.basePath = base.basePath + path
            let answer: (status: Int, body: [UInt8])
            do {
                answer = try await NodeClient.get(url, group: group)
            } catch {
                throw failure("cannot reach \(node): \(error)")
            }
            guard answer.status == 200, let body = try? JSON(parsing: answer.body) else {
                throw failure("\(url) answered \(answer.status)")
            }
            return body
        }
        let mesh = try await get("/v1/mesh")
        let names = (try await get("/v1/regions"))["data"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
        var regions: [JSON] = []
        for name in names { regions.append(try await get("/v1/regions/\(name)/health")) }
        if json {
            say(JSON.object(["mesh": mesh, "regions": .array(regions)]).text)
        } else {
            say(StatusTables(mesh: mesh, regions: regions).text)
        }
    }

    private func failure(_ message: String) -> any Error {
        FileHandle.standardError.write(Data("isobar status: \(message)\n".utf8))
        return ExitCode(1)
    }
}
