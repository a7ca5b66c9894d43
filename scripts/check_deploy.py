#!/usr/bin/env python3
"""Checks the deployment files under deploy/ without deploying them.

  kubernetes  every manifest under deploy/kubernetes against the Kubernetes API schema (kubernetes-validate,
              strict: unknown fields are errors); every kustomization.yaml's fields and the files it names;
              the mesh topology with `isobar check`; each overlay's namespace and region against a pool of
              the topology (its ports, the pod's name and IP as instance and advertised address) and its
              gossip Service among the mesh's seeds; with kubectl or kustomize on PATH, every overlay
              rendered and validated as a whole
  compose     deploy/compose.yaml: images, mounted files, env files, health checks, read-only non-root
              Isobar containers, service names against the topology; the topology with `isobar check`
  dockerfile  deploy/Dockerfile: stages, COPY sources, the runtime stage's user, health check and entry point
  systemd     deploy/systemd/isobar.service with `systemd-analyze verify`, the binary path pointed at --isobar

Prints one `ok` line per check that passes and `path: message` for every problem, then exits 1 if there was
one. Runs from any directory: paths are taken relative to the repository this script is in.

Needs PyYAML and kubernetes-validate (Tests/Conformance/requirements.txt) and systemd-analyze.

  .venv/bin/python scripts/check_deploy.py --isobar .build/debug/isobar
"""
import argparse
import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

try:
    import yaml
except ImportError:
    sys.exit("check_deploy: PyYAML is missing (pip install kubernetes-validate, which depends on it)")
try:
    import kubernetes_validate
except ImportError:
    sys.exit("check_deploy: kubernetes-validate is missing (pip install kubernetes-validate)")

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
# The Kubernetes API version the manifests are validated against.
KUBERNETES_VERSION = "1.34.0"
# The node's default drain timeout (GatewayNode.drainTimeout): stop timeouts must exceed it.
DRAIN_SECONDS = 10

problems = []


def rel(path):
    """`path` relative to the repository, for messages."""
    try:
        return str(Path(os.path.abspath(path)).relative_to(REPO))
    except ValueError:
        return str(path)


def problem(path, message):
    problems.append(f"{rel(path)}: {message}")


def ok(message):
    print(f"ok  {message}")


def check(name):
    """Runs a check function; prints `ok NAME: SUMMARY` if it logged no problem."""

    def wrap(function):
        def run(*args):
            before = len(problems)
            summary = function(*args)
            if len(problems) == before:
                ok(f"{name}: {summary}")
            else:
                for line in problems[before:]:
                    print(line)

        return run

    return wrap


def load_yaml_documents(path):
    """Every non-empty document of a YAML file, or None after logging why it cannot be read."""
    try:
        with open(path) as f:
            return [d for d in yaml.safe_load_all(f) if d is not None]
    except (OSError, yaml.YAMLError) as error:
        problem(path, f"cannot read YAML: {error}")
        return None


def load_yaml(path):
    documents = load_yaml_documents(path)
    if documents is None:
        return None
    if len(documents) != 1 or not isinstance(documents[0], dict):
        problem(path, "expected one YAML mapping")
        return None
    return documents[0]


def read_env_file(path):
    """KEY=VALUE lines of an env file (compose env_file, kustomize envs), comments and blank lines skipped."""
    values = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key.strip()):
            problem(path, f"line {number}: expected KEY=VALUE")
            continue
        values[key.strip()] = value.strip()
    return values


def isobar_check(isobar, topology, environment):
    """Runs `isobar check` on a topology with only `environment` (plus PATH) set; logs its complaints."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", **environment}
    result = subprocess.run(
        [str(isobar), "check", rel(topology)], cwd=REPO, env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        lines = (result.stderr + result.stdout).strip().splitlines() or [f"isobar check exited {result.returncode}"]
        for line in lines:
            problems.append(line if line.startswith(rel(topology)) else f"{rel(topology)}: {line}")
        return None
    return result.stdout.strip()


def host_port(address):
    """`host:port` (IPv6 in brackets) as (host, port), or None."""
    match = re.fullmatch(r"\[?([^\]]*?)\]?:(\d+)", str(address))
    return (match.group(1), int(match.group(2))) if match else None


# MARK: - Kubernetes

# Fields of a Kustomization (kustomize v5), and of the entries of the lists this repository uses.
KUSTOMIZATION_FIELDS = {
    "apiVersion", "kind", "metadata", "openapi", "namePrefix", "nameSuffix", "namespace", "commonLabels",
    "labels", "commonAnnotations", "patchesStrategicMerge", "patchesJson6902", "patches", "images",
    "replacements", "replicas", "vars", "sortOptions", "resources", "components", "crds", "bases",
    "configMapGenerator", "secretGenerator", "helmGlobals", "helmCharts", "generatorOptions", "configurations",
    "generators", "transformers", "validators", "buildMetadata",
}
ENTRY_FIELDS = {
    "configMapGenerator": {"name", "namespace", "behavior", "files", "literals", "envs", "env", "options"},
    "secretGenerator": {"name", "namespace", "behavior", "files", "literals", "envs", "env", "options", "type"},
    "labels": {"pairs", "includeSelectors", "includeTemplates", "fields"},
    "replicas": {"name", "count"},
    "images": {"name", "newName", "newTag", "digest", "tagSuffix"},
    "patches": {"path", "patch", "target", "options"},
}
KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


def kustomization_file(directory):
    for name in KUSTOMIZATION_NAMES:
        if (directory / name).is_file():
            return directory / name
    return None


def generator_files(entry):
    """The files a configMapGenerator or secretGenerator entry reads: `files` (KEY=PATH or PATH), `envs`."""
    paths = [f.partition("=")[2] or f for f in entry.get("files") or []]
    paths += list(entry.get("envs") or [])
    if entry.get("env"):
        paths.append(entry["env"])
    return paths


class Kustomization:
    """One kustomization directory: its own fields, and the manifests and kustomizations it pulls in."""

    def __init__(self, path):
        self.path = path
        self.directory = path.parent
        self.data = load_yaml(path) or {}
        self.manifests = []  # (file, document)
        self.bases = []  # Kustomization of resource directories
        for resource in self.data.get("resources") or []:
            target = (self.directory / resource).resolve()
            if target.is_dir() and kustomization_file(target):
                self.bases.append(Kustomization(kustomization_file(target)))
            elif target.is_file():
                self.manifests += [(target, d) for d in load_yaml_documents(target) or []]

    def chain(self):
        """This kustomization and every one below it, outermost first."""
        yield self
        for base in self.bases:
            yield from base.chain()

    def all_manifests(self):
        for k in self.chain():
            yield from k.manifests

    def generated(self, kind, name):
        """The outermost generator entry named `name` (an overlay's `replace` wins over its base's)."""
        for k in self.chain():
            for entry in k.data.get(kind) or []:
                if entry.get("name") == name:
                    return k, entry
        return None, None

    def env_files(self):
        """Every env file the secret generators of the chain read."""
        return [k.directory / e for k in self.chain() for g in k.data.get("secretGenerator") or []
                for e in list(g.get("envs") or []) + ([g["env"]] if g.get("env") else [])]


@check("kubernetes manifests")
def check_manifests(kustomizations):
    """Every manifest file the kustomizations name, validated strictly against the API schema."""
    files = {}
    for k in kustomizations:
        for f, document in k.manifests:
            files.setdefault(f, []).append(document)
    inputs = {(k.directory / f).resolve() for k in kustomizations
              for kind in ("configMapGenerator", "secretGenerator") for g in k.data.get(kind) or []
              for f in generator_files(g)}
    for path in sorted(KUBERNETES.rglob("*.y*ml")):
        if path.name not in KUSTOMIZATION_NAMES and path.resolve() not in files and path.resolve() not in inputs:
            problem(path, "named by no kustomization, neither as a resource nor as a generator input")
    count = 0
    for f, documents in sorted(files.items()):
        for document in documents:
            count += validate_resource(f, document)
    return f"{count} objects in {len(files)} files valid against Kubernetes {KUBERNETES_VERSION} (strict)"


def validate_resource(path, document):
    if not isinstance(document, dict) or "kind" not in document or "apiVersion" not in document:
        problem(path, "a document without apiVersion and kind")
        return 0
    what = f"{document['kind']}/{(document.get('metadata') or {}).get('name', '?')}"
    try:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        location = ".".join(str(p) for p in error.path) or "<object>"
        problem(path, f"{what}: {location}: {error.message}")
        return 0
    except (kubernetes_validate.SchemaNotFoundError, kubernetes_validate.InvalidSchemaError) as error:
        problem(path, f"{what}: {error.message}")
        return 0
    return 1


@check("kustomizations")
def check_kustomizations(kustomizations):
    """Known fields only, and every file or directory they name exists."""
    for k in kustomizations:
        data, path = k.data, k.path
        if data.get("apiVersion") != "kustomize.config.k8s.io/v1beta1" or data.get("kind") != "Kustomization":
            problem(path, "apiVersion/kind must be kustomize.config.k8s.io/v1beta1 Kustomization")
        for key in data:
            if key not in KUSTOMIZATION_FIELDS:
                problem(path, f"{key}: not a kustomization field")
        for field, allowed in ENTRY_FIELDS.items():
            for i, entry in enumerate(data.get(field) or []):
                if not isinstance(entry, dict):
                    problem(path, f"{field}[{i}]: expected a mapping")
                    continue
                for key in entry:
                    if key not in allowed:
                        problem(path, f"{field}[{i}].{key}: not a field of {field} entries")
        for resource in list(data.get("resources") or []) + list(data.get("components") or []):
            target = k.directory / resource
            if not (target.is_file() or (target.is_dir() and kustomization_file(target))):
                problem(path, f"resources: {resource}: no such file or kustomization directory")
        for field in ("configMapGenerator", "secretGenerator"):
            for entry in data.get(field) or []:
                if entry.get("behavior", "create") not in ("create", "replace", "merge"):
                    problem(path, f"{field} {entry.get('name')}: behavior must be create, replace or merge")
                for f in generator_files(entry):
                    if not (k.directory / f).is_file():
                        problem(path, f"{field} {entry.get('name')}: {f}: no such file")
        for patch in data.get("patches") or []:
            if isinstance(patch, dict) and patch.get("path") and not (k.directory / patch["path"]).is_file():
                problem(path, f"patches: {patch['path']}: no such file")
    return f"{len(kustomizations)} kustomization.yaml files: known fields, every named file exists"


def deployment(kustomization):
    for f, document in kustomization.all_manifests():
        if document.get("kind") == "Deployment":
            return f, document
    return None, None


def topology_of(kustomization):
    """The topology file the ConfigMap isobar-topology is generated from, for this kustomization."""
    k, entry = kustomization.generated("configMapGenerator", "isobar-topology")
    if not entry:
        return None
    for f in entry.get("files") or []:
        key, _, path = f.rpartition("=")
        if (key or Path(path).name) == "topology.yaml":
            return (k.directory / path).resolve()
    return None


@check("kubernetes topologies")
def check_kubernetes_topologies(isobar, overlays):
    """`isobar check` on each overlay's topology, with the variables of the secret generators' env files."""
    checked = {}
    for overlay in overlays:
        topology = topology_of(overlay)
        if topology is None:
            problem(overlay.path, "no configMapGenerator isobar-topology with a topology.yaml")
            continue
        if topology in checked:
            continue
        environment = {}
        for env_file in overlay.env_files():
            if env_file.is_file():
                environment.update(read_env_file(env_file))
        checked[topology] = isobar_check(isobar, topology, environment)
    return "; ".join(f"{rel(t)} ({', '.join(rel(o.directory) for o in overlays if topology_of(o) == t)})"
                     for t in checked) + ": isobar check passes"


@check("kubernetes overlays")
def check_overlays(overlays):
    """Distinct namespaces; each overlay's region and namespace match a pool and a seed of the topology."""
    namespaces = {}
    regions_seen = {}
    for overlay in overlays:
        namespace = next((k.data["namespace"] for k in overlay.chain() if k.data.get("namespace")), None)
        if not namespace:
            problem(overlay.path, "sets no namespace")
            continue
        if namespace in namespaces:
            problem(overlay.path, f"namespace {namespace} is also the namespace of {rel(namespaces[namespace])}")
        namespaces[namespace] = overlay.path
        region = None
        for entry in overlay.data.get("labels") or []:
            if "isobar.dev/region" in (entry.get("pairs") or {}):
                region = entry["pairs"]["isobar.dev/region"]
                if not entry.get("includeSelectors"):
                    problem(overlay.path, "the isobar.dev/region label needs includeSelectors: true")
        if not region:
            problem(overlay.path, "no labels entry with isobar.dev/region")
            continue
        if region in regions_seen:
            problem(overlay.path, f"region {region} is also the region of {rel(regions_seen[region])}")
        regions_seen[region] = overlay.path
        check_overlay_nodes(overlay, namespace, region)
    topologies = {topology_of(o) for o in overlays} - {None}
    for topology in topologies:
        data = load_yaml(topology) or {}
        for r in data.get("regions") or []:
            name = r.get("name") if isinstance(r, dict) else None
            if name and name not in regions_seen:
                problem(topology, f"region {name} has no overlay in {rel(KUBERNETES / 'overlays')}")
    return f"{len(overlays)} overlays, namespaces {', '.join(sorted(namespaces))}: pools and seeds match the topology"


def check_overlay_nodes(overlay, namespace, region):
    """The Deployment's pods run members of this region's pool of the topology, at its ports, announcing
    their pod IP, and the region's gossip Service is among the mesh's seeds."""
    f, deploy = deployment(overlay)
    topology = topology_of(overlay)
    if deploy is None or topology is None:
        problem(overlay.path, "no Deployment or topology to compare")
        return
    pod = deploy["spec"]["template"]["spec"]
    container = pod["containers"][0]
    args = list(container.get("command") or []) + list(container.get("args") or [])
    fields = {e["name"]: e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
              for e in container.get("env") or [] if "valueFrom" in e}
    values = {"metadata.name": "POD", "metadata.namespace": namespace, "status.podIP": "POD_IP",
              "metadata.labels['isobar.dev/region']": region}

    def argument(option):
        if option not in args or args.index(option) + 1 >= len(args):
            return None
        return re.sub(r"\$\((\w+)\)", lambda m: values.get(fields.get(m.group(1)), m.group(0)),
                      args[args.index(option) + 1])

    for option, expected in (("--instance", "POD"), ("--advertise", "POD_IP")):
        if argument(option) != expected:
            problem(f, f"the container's {option} must come from the pod's "
                       f"{'name' if expected == 'POD' else 'IP'} (downward API)")
    data = load_yaml(topology) or {}
    pools = {n.get("name"): n for n in data.get("nodes") or [] if n.get("pool")}
    pool_name = argument("--node")
    pool = pools.get(pool_name)
    if pool is None:
        problem(f, f"--node {pool_name} in {rel(overlay.directory)} is no pool of {rel(topology)} "
                   f"(pools: {', '.join(sorted(map(str, pools))) or 'none'})")
        return
    if pool.get("region") != region:
        problem(topology, f"nodes: pool {pool_name} is in region {pool.get('region')}, its overlay "
                          f"{rel(overlay.directory)} in {region}")
    ports = {p.get("name"): p["containerPort"] for p in container.get("ports") or []}
    for key, port_names in (("listen", ["http"]), ("gossip", ["gossip-udp", "gossip-tcp"])):
        address = host_port(pool.get(key))
        if address is None or address[0] != "0.0.0.0":
            problem(topology, f"nodes: {pool_name}.{key} must bind every interface of the pod (0.0.0.0)")
        elif any(ports.get(p) != address[1] for p in port_names):
            problem(topology, f"nodes: {pool_name}.{key} port {address[1]} is not the container ports "
                              f"{', '.join(port_names)} of {rel(f)}")
    gossip = host_port(pool.get("gossip"))
    service = f"isobar-gossip.{namespace}.svc."
    seeds = [host_port(seed) for seed in (data.get("mesh") or {}).get("seeds") or []]
    if gossip and not any(seed and seed[0].startswith(service) and seed[1] == gossip[1] for seed in seeds):
        problem(topology, f"mesh.seeds: the gossip Service of {rel(overlay.directory)}, "
                          f"{service}<cluster domain>:{gossip[1]}, is missing")


@check("kubernetes rendered overlays")
def check_rendered(overlays):
    """Each overlay built by kustomize, every object validated strictly (skipped without the tool)."""
    if shutil.which("kustomize"):
        command = ["kustomize", "build"]
    elif shutil.which("kubectl"):
        command = ["kubectl", "kustomize"]
    else:
        return "skipped: neither kustomize nor kubectl is on PATH"
    count = 0
    for overlay in overlays:
        result = subprocess.run(command + [str(overlay.directory)], capture_output=True, text=True)
        if result.returncode != 0:
            problem(overlay.path, f"{' '.join(command)} failed: {result.stderr.strip()}")
            continue
        for document in yaml.safe_load_all(result.stdout):
            if document:
                count += validate_resource(overlay.path, document)
    return f"{' '.join(command)}: {count} objects of {len(overlays)} overlays valid (strict)"


def check_kubernetes(isobar):
    paths = sorted(p for name in KUSTOMIZATION_NAMES for p in KUBERNETES.rglob(name))
    kustomizations = [Kustomization(p) for p in paths]
    overlays = [k for k in kustomizations if k.directory.parent == KUBERNETES / "overlays"]
    if not overlays:
        problem(KUBERNETES / "overlays", "no overlays")
        return
    check_manifests(kustomizations)
    check_kustomizations(kustomizations)
    check_kubernetes_topologies(isobar, overlays)
    check_overlays(overlays)
    check_rendered(overlays)


# MARK: - Compose

COMPOSE = DEPLOY / "compose.yaml"


def bind_mounts(service):
    """(host path, container path) of every bind mount of a service, short or long syntax."""
    for volume in service.get("volumes") or []:
        if isinstance(volume, str):
            parts = volume.split(":")
            if len(parts) >= 2 and parts[0].startswith((".", "/", "~")):
                yield parts[0], parts[1]
        elif isinstance(volume, dict) and volume.get("type") == "bind":
            yield volume.get("source", ""), volume.get("target", "")


def command_of(service):
    command = service.get("command") or []
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def option(args, name):
    return args[args.index(name) + 1] if name in args and args.index(name) + 1 < len(args) else None


def non_root(user):
    if user is None:
        return False
    name = str(user).split(":")[0]
    return name not in ("", "0", "root")


@check("compose")
def check_compose(isobar):
    data = load_yaml(COMPOSE)
    if data is None:
        return ""
    services = data.get("services") or {}
    base = COMPOSE.parent
    gateways, engines, env_files = {}, {}, set()
    for name, service in services.items():
        where = f"services.{name}"
        if not service.get("image") and not service.get("build"):
            problem(COMPOSE, f"{where}: neither image nor build")
        build = service.get("build")
        if build:
            context = base / (build.get("context", ".") if isinstance(build, dict) else build)
            dockerfile = context / (build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile")
            if not dockerfile.is_file():
                problem(COMPOSE, f"{where}.build: {rel(dockerfile)} does not exist")
        for source, _ in bind_mounts(service):
            if not (base / source).exists():
                problem(COMPOSE, f"{where}.volumes: {source} does not exist")
        for env_file in service.get("env_file") or []:
            path = env_file if isinstance(env_file, str) else env_file.get("path", "")
            example = base / f"{path}.example"
            env_files.add(example)
            if not example.is_file():
                problem(COMPOSE, f"{where}.env_file: {path}: no {rel(example)} to copy it from")
        args = command_of(service)
        if args[:1] == ["serve"]:
            gateways[name] = service
        elif args[:1] == ["emulate"]:
            engines[name] = service
        if args[:1] in (["serve"], ["emulate"]):
            if service.get("read_only") is not True:
                problem(COMPOSE, f"{where}: read_only must be true")
            if not non_root(service.get("user")):
                problem(COMPOSE, f"{where}: user must be set and not root")
    if not gateways:
        problem(COMPOSE, "no gateway service (command: [serve, ...])")
        return ""
    topologies = set()
    for name, service in gateways.items():
        mounts = {target: source for source, target in bind_mounts(service)}
        target = option(command_of(service), "--topology")
        if target not in mounts:
            problem(COMPOSE, f"services.{name}: --topology {target} is not a mounted file")
        else:
            topologies.add((base / mounts[target]).resolve())
    if len(topologies) != 1:
        problem(COMPOSE, "the gateways must mount one topology file")
        return ""
    topology = topologies.pop()
    for example in env_files:
        if not example.is_file():
            return ""
    environment = {}
    for example in sorted(env_files):
        environment.update(read_env_file(example))
    if isobar_check(isobar, topology, environment) is None:
        return ""
    check_compose_against_topology(services, gateways, engines, load_yaml(topology) or {}, topology)
    return (f"{len(services)} services ({len(gateways)} gateways, {len(engines)} engines); "
            f"{rel(topology)} passes isobar check with {', '.join(rel(e) for e in sorted(env_files))}")


def check_compose_against_topology(services, gateways, engines, topology, topology_path):
    """Service names, ports and health checks agree with the nodes and backends of the topology."""
    nodes = {n.get("name"): n for n in topology.get("nodes") or []}
    for name, service in gateways.items():
        where = f"services.{name}"
        node_name = option(command_of(service), "--node")
        node = nodes.get(node_name)
        if node is None:
            problem(COMPOSE, f"{where}: --node {node_name} is not a node of {rel(topology_path)}")
            continue
        listen = host_port(node.get("listen"))
        names = {name, service.get("hostname")}
        for key in ("listen", "gossip"):
            address = host_port(node.get(key))
            if address and address[0] not in names | {"0.0.0.0", "::"}:
                problem(topology_path, f"nodes: {node_name}.{key}: host {address[0]} is not the service {name}")
        published = [str(p).rsplit(":", 1)[-1].split("/")[0] for p in service.get("ports") or []]
        if listen and str(listen[1]) not in published:
            problem(COMPOSE, f"{where}.ports: the node's listen port {listen[1]} is not published")
        test = (service.get("healthcheck") or {}).get("test")
        if not test or test == ["NONE"] or (service.get("healthcheck") or {}).get("disable"):
            problem(COMPOSE, f"{where}: no healthcheck")
        elif listen:
            host = "127.0.0.1" if listen[0] in ("0.0.0.0", "::") else listen[0]
            if f"http://{host}:{listen[1]}/health" not in " ".join(map(str, test)):
                problem(COMPOSE, f"{where}.healthcheck: must ask http://{host}:{listen[1]}/health (the node's listen)")
    for node_name in nodes:
        if node_name not in {option(command_of(s), "--node") for s in gateways.values()}:
            problem(COMPOSE, f"node {node_name} of {rel(topology_path)} has no gateway service")
    for backend in topology.get("backends") or []:
        for key in ("url", "metrics_url"):
            match = re.match(r"https?://([^/:]+):?(\d*)", str(backend.get(key) or ""))
            if not match:
                continue
            host, port = match.group(1), match.group(2)
            service = services.get(host)
            if service is None:
                problem(topology_path, f"backends: {backend.get('name')}.{key}: {host} is not a compose service")
            elif host in engines:
                listen = host_port(option(command_of(service), "--listen") or "127.0.0.1:8000")
                if listen and port and int(port) != listen[1]:
                    problem(topology_path, f"backends: {backend.get('name')}.{key}: port {port}, but {host} "
                                           f"listens on {listen[1]}")
                served = [a for i, a in enumerate(command_of(service)) if i and command_of(service)[i - 1] == "--model"]
                for model in backend.get("models") or []:
                    if served and model not in served:
                        problem(topology_path, f"backends: {backend.get('name')}: {host} does not serve {model}")


# MARK: - Dockerfile

DOCKERFILE = DEPLOY / "Dockerfile"


def dockerfile_instructions(path):
    """(line, INSTRUCTION, arguments) with continuations joined and comments dropped."""
    instructions, pending, start = [], "", 0
    for number, line in enumerate(path.read_text().splitlines(), 1):
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        text = pending + stripped
        pending = ""
        word, _, rest = text.partition(" ")
        instructions.append((start, word.upper(), rest.strip()))
    return instructions


def copy_sources(arguments):
    """The source paths of a COPY or ADD, and its flags."""
    flags = {}
    words = shlex.split(arguments) if not arguments.startswith("[") else None
    if words is None:
        return json.loads(arguments)[:-1], flags
    while words and words[0].startswith("--"):
        key, _, value = words.pop(0)[2:].partition("=")
        flags[key] = value
    if words and words[0].startswith("["):
        words = json.loads(" ".join(words))
    return words[:-1], flags


@check("dockerfile")
def check_dockerfile():
    if not DOCKERFILE.is_file():
        problem(DOCKERFILE, "does not exist")
        return ""
    instructions = dockerfile_instructions(DOCKERFILE)
    stages = []  # [name, [(line, instruction, args)]]
    for line, word, arguments in instructions:
        if word == "FROM":
            match = re.match(r"(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?", arguments, re.IGNORECASE)
            stages.append({"image": match.group(1), "name": match.group(2), "instructions": []})
        elif not stages:
            if word != "ARG":
                problem(DOCKERFILE, f"line {line}: {word} before the first FROM")
        else:
            stages[-1]["instructions"].append((line, word, arguments))
    if len(stages) < 2:
        problem(DOCKERFILE, f"{len(stages)} FROM stage(s); a build stage and a runtime stage are expected")
        return ""
    names = {s["name"] for s in stages if s["name"]}
    for stage in stages:
        for line, word, arguments in stage["instructions"]:
            if word not in ("COPY", "ADD"):
                continue
            sources, flags = copy_sources(arguments)
            if "from" in flags:
                if flags["from"] not in names and not flags["from"].isdigit():
                    problem(DOCKERFILE, f"line {line}: COPY --from={flags['from']} names no stage")
                continue
            for source in sources:
                if not glob.glob(str(REPO / source)):
                    problem(DOCKERFILE, f"line {line}: {word} source {source} matches nothing in the repository")
    final = stages[-1]["instructions"]
    words = {}
    for line, word, arguments in final:
        words.setdefault(word, []).append(arguments)
    user = (words.get("USER") or [None])[-1]
    if not non_root(user):
        problem(DOCKERFILE, f"the runtime stage must end as a non-root USER (got {user})")
    healthcheck = (words.get("HEALTHCHECK") or [None])[-1]
    if not healthcheck or healthcheck.strip().upper() == "NONE":
        problem(DOCKERFILE, "the runtime stage has no HEALTHCHECK")
    if not words.get("ENTRYPOINT"):
        problem(DOCKERFILE, "the runtime stage has no ENTRYPOINT")
    builds = [a for s in stages[:-1] for _, w, a in s["instructions"] if w == "RUN" and "swift build" in a]
    if not any("-c release" in b and "--static-swift-stdlib" in b for b in builds):
        problem(DOCKERFILE, "no build stage runs swift build -c release --static-swift-stdlib")
    return (f"{len(stages)} stages ({' -> '.join(s['image'] for s in stages)}); COPY sources exist; "
            f"runtime USER {user}, HEALTHCHECK, ENTRYPOINT")


# MARK: - systemd

UNIT = DEPLOY / "systemd" / "isobar.service"
INSTALLED_BINARY = "/usr/local/bin/isobar"


@check("systemd")
def check_systemd(isobar):
    """`systemd-analyze verify` of the unit as written, its ExecStart binary pointed at --isobar (verify needs
    the binary to exist); any complaint about the unit fails."""
    if not UNIT.is_file():
        problem(UNIT, "does not exist")
        return ""
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        problem(UNIT, "systemd-analyze is not installed (Debian package systemd)")
        return ""
    text = UNIT.read_text()
    lines = text.splitlines(keepends=True)
    exec_start = [i for i, l in enumerate(lines) if l.startswith("ExecStart=")]
    if len(exec_start) != 1 or not lines[exec_start[0]].startswith(f"ExecStart={INSTALLED_BINARY} "):
        problem(UNIT, f"expected one ExecStart={INSTALLED_BINARY} ... line")
        return ""
    settings = {}
    for line in lines:
        key, sep, value = line.strip().partition("=")
        if sep and not line.startswith(("#", ";")):
            settings.setdefault(key, []).append(value)
    timeout = (settings.get("TimeoutStopSec") or ["90s"])[-1]
    seconds = re.fullmatch(r"(\d+)\s*(s|sec)?", timeout)
    if not seconds or int(seconds.group(1)) <= DRAIN_SECONDS:
        problem(UNIT, f"TimeoutStopSec={timeout} must exceed the node's {DRAIN_SECONDS} s drain")
    if not settings.get("ExecReload"):
        problem(UNIT, "no ExecReload (SIGHUP reloads the topology)")
    index = exec_start[0]
    lines[index] = lines[index].replace(INSTALLED_BINARY, str(isobar), 1)
    with tempfile.TemporaryDirectory() as directory:
        unit = Path(directory) / UNIT.name
        unit.write_text("".join(lines))
        result = subprocess.run([analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True)
        complaints = [l for l in (result.stdout + result.stderr).splitlines()
                      if directory in l or UNIT.name in l]
        for complaint in complaints:
            complaint = complaint.replace(str(unit), rel(UNIT))
            problems.append(complaint if complaint.startswith(rel(UNIT)) else f"{rel(UNIT)}: {complaint}")
        if result.returncode != 0 and not complaints:
            problem(UNIT, f"systemd-analyze verify exited {result.returncode}: {result.stderr.strip()}")
    return f"systemd-analyze verify passes (ExecStart binary {rel(isobar)})"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--isobar", default=str(REPO / ".build" / "debug" / "isobar"),
                        help="isobar binary for `isobar check` and the unit's ExecStart (default: the debug build)")
    args = parser.parse_args()
    isobar = Path(args.isobar).absolute()
    if not os.access(isobar, os.X_OK):
        sys.exit(f"check_deploy: {args.isobar} is not an executable (build it first: swift build)")
    check_kubernetes(isobar)
    check_compose(isobar)
    check_dockerfile()
    check_systemd(isobar)
    if problems:
        print(f"check_deploy: {len(problems)} problem(s)", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
