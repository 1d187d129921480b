#!/usr/bin/env python3
"""Renders every Kubernetes overlay with `kubectl kustomize` and checks the
objects against each other and against r1serve itself:

- probes point at routes the server registers (/startup, /health, /ready),
  on the container's named port, and the Service and ServiceMonitor reach
  that port;
- the ConfigMap's config is accepted by `r1serve serve --print-config`
  (unknown keys are errors there) and its port is the container's;
- terminationGracePeriodSeconds covers the preStop sleep plus the config's
  drain-timeout;
- every container has CPU and memory requests and limits, runs as non-root
  with a read-only root filesystem; the gpu overlay asks for one GPU;
- the HPA targets the Deployment on CPU 70% and queue depth; the keda overlay
  swaps it for a ScaledObject on queue depth and KV-cache usage;
- the PrometheusRule carries exactly the groups of deploy/prometheus/rules.yml;
- the spot overlay checkpoints into the Redis its NetworkPolicy admits, reads
  the spot notice from the metadata address it may reach, and drains inside
  GCP's 30 s notice.

Usage: kustomize_test.py SOURCE_DIR R1SERVE_BINARY
"""
import os
import re
import subprocess
import sys
import tempfile

import yaml

SRC, BIN = sys.argv[1], sys.argv[2]
K8S = os.path.join(SRC, "deploy", "k8s")
OVERLAYS = ["cpu", "gpu", "edge", "keda", "spot"]
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)


def render(overlay):
    out = subprocess.run(["kubectl", "kustomize", os.path.join(K8S, "overlays", overlay)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"kubectl kustomize {overlay} failed: {out.stderr}")
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def server_routes():
    text = open(os.path.join(SRC, "src", "server", "openai_server.cpp")).read()
    return set(re.findall(r'route\("GET", "([^"]+)"', text))


def by_kind(docs, kind):
    return [d for d in docs if d["kind"] == kind]


def config_of(docs, name_prefix):
    for cm in by_kind(docs, "ConfigMap"):
        if cm["metadata"]["name"].startswith(name_prefix):
            return cm
    return None


routes = server_routes()
rules = yaml.safe_load(open(os.path.join(SRC, "deploy", "prometheus", "rules.yml")))

for overlay in OVERLAYS:
    docs = render(overlay)
    where = f"[{overlay}]"
    deps = by_kind(docs, "Deployment")
    check(len(deps) == 1, f"{where} one Deployment")
    dep = deps[0]
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    check("http" in ports, f"{where} container port named http")

    for probe, path in [("startupProbe", "/startup"), ("livenessProbe", "/health"),
                        ("readinessProbe", "/ready")]:
        p = c.get(probe, {}).get("httpGet", {})
        check(p.get("path") == path, f"{where} {probe} on {path}, has {p.get('path')}")
        check(p.get("path") in routes, f"{where} {probe} path {p.get('path')} is a server route")
        check(p.get("port") in ports or p.get("port") in ports.values(),
              f"{where} {probe} port {p.get('port')} is the container's")

    # The config, as r1serve reads it.
    cm = config_of(docs, "r1serve-config")
    check(cm is not None, f"{where} ConfigMap r1serve-config")
    config = yaml.safe_load(cm["data"]["config.yaml"])
    vols = {v["name"]: v for v in pod["volumes"]}
    mounted = [m for m in c["volumeMounts"] if m["mountPath"] == "/etc/r1serve/config.yaml"]
    check(mounted and vols[mounted[0]["name"]].get("configMap", {}).get("name") ==
          cm["metadata"]["name"], f"{where} the pod mounts the rendered ConfigMap")
    check(c["args"][-1] == "/etc/r1serve/config.yaml", f"{where} serve --config the mounted file")
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(cm["data"]["config.yaml"])
    out = subprocess.run([BIN, "serve", "--config", f.name, "--print-config"],
                         capture_output=True, text=True)
    os.unlink(f.name)
    check(out.returncode == 0, f"{where} r1serve refuses the config: {out.stderr.strip()}")
    check(config.get("port") == ports.get("http"), f"{where} config port = container port")
    check(config.get("host") == "0.0.0.0", f"{where} listens on all addresses")

    # Drain: SIGTERM after preStop, then drain-timeout, all inside the grace period.
    pre = c["lifecycle"]["preStop"]["exec"]["command"]
    pre_s = int(pre[1]) if pre[0] == "sleep" else 0
    drain = float(config.get("drain-timeout", 30))
    grace = pod.get("terminationGracePeriodSeconds", 30)
    check(grace >= pre_s + drain, f"{where} grace {grace} < preStop {pre_s} + drain {drain}")
    check(grace <= pre_s + drain + 30, f"{where} grace {grace} far beyond what drain needs")

    # Resources and security.
    res = c.get("resources", {})
    for part in ("requests", "limits"):
        for r in ("cpu", "memory"):
            check(r in res.get(part, {}), f"{where} {part}.{r} set")
    if overlay in ("gpu", "keda"):
        check(str(res["limits"].get("nvidia.com/gpu")) == "1", f"{where} one GPU per pod")
    sc = c.get("securityContext", {})
    check(sc.get("readOnlyRootFilesystem") is True, f"{where} read-only root filesystem")
    check(sc.get("allowPrivilegeEscalation") is False, f"{where} no privilege escalation")
    check(pod.get("securityContext", {}).get("runAsNonRoot") is True, f"{where} non-root")
    check(any(v.get("persistentVolumeClaim") for v in pod["volumes"]),
          f"{where} weights come from a volume")

    # Service, ServiceMonitor, PDB, NetworkPolicy.
    svc = by_kind(docs, "Service")[0]
    sp = svc["spec"]["ports"][0]
    check(sp["targetPort"] in ports or sp["targetPort"] in ports.values(),
          f"{where} Service targetPort reaches the container")
    sel = svc["spec"]["selector"]
    labels = dep["spec"]["template"]["metadata"]["labels"]
    check(all(labels.get(k) == v for k, v in sel.items()), f"{where} Service selects the pods")
    sm = by_kind(docs, "ServiceMonitor")[0]
    check(sm["spec"]["endpoints"][0]["port"] == sp["name"], f"{where} ServiceMonitor port")
    check(sm["spec"]["endpoints"][0]["path"] == "/metrics", f"{where} ServiceMonitor path")
    check(len(by_kind(docs, "PodDisruptionBudget")) == 1, f"{where} PodDisruptionBudget")
    np_ = by_kind(docs, "NetworkPolicy")
    check(len(np_) == 1 and np_[0]["spec"]["ingress"][0]["ports"][0]["port"] == ports["http"],
          f"{where} NetworkPolicy admits the serving port")

    # Autoscaling.
    hpas = by_kind(docs, "HorizontalPodAutoscaler")
    scaled = by_kind(docs, "ScaledObject")
    if overlay == "keda":
        check(not hpas, f"{where} no HPA beside KEDA's")
        check(len(scaled) == 1, f"{where} ScaledObject")
        queries = " ".join(t["metadata"]["query"] for t in scaled[0]["spec"]["triggers"])
        check("r1serve_num_requests_waiting" in queries, f"{where} KEDA on queue depth")
        check("r1serve_kv_cache_usage_ratio" in queries, f"{where} KEDA on KV usage")
        check(scaled[0]["spec"]["scaleTargetRef"]["name"] == dep["metadata"]["name"],
              f"{where} ScaledObject targets the Deployment")
    else:
        check(len(hpas) == 1 and not scaled, f"{where} one HPA")
        h = hpas[0]["spec"]
        check(hpas[0]["apiVersion"] == "autoscaling/v2", f"{where} autoscaling/v2")
        check(h["scaleTargetRef"]["name"] == dep["metadata"]["name"], f"{where} HPA target")
        cpu = [m for m in h["metrics"] if m["type"] == "Resource"]
        check(cpu and cpu[0]["resource"]["target"]["averageUtilization"] == 70,
              f"{where} HPA on CPU 70%")
        pods = [m for m in h["metrics"] if m["type"] == "Pods"]
        check(pods and pods[0]["pods"]["metric"]["name"] == "r1serve_num_requests_waiting",
              f"{where} HPA on queue depth")
        check(h["minReplicas"] <= h["maxReplicas"], f"{where} HPA bounds")

    # Alert rules identical to the shipped file.
    pr = by_kind(docs, "PrometheusRule")
    check(len(pr) == 1 and pr[0]["spec"]["groups"] == rules["groups"],
          f"{where} PrometheusRule equals deploy/prometheus/rules.yml")

# The compose stack: its services, the files it mounts, the config r1serve
# reads, and Prometheus scraping the r1serve service on its port.
COMPOSE = os.path.join(SRC, "deploy", "compose")
compose = yaml.safe_load(open(os.path.join(COMPOSE, "docker-compose.yml")))
services = compose["services"]
check(set(services) >= {"r1serve", "prometheus", "grafana", "redis"}, "[compose] services")
for name, svc in services.items():
    for vol in svc.get("volumes", []):
        host = vol.split(":")[0]
        if host.startswith(".") and not os.path.exists(os.path.join(COMPOSE, host)):
            check(False, f"[compose] {name} mounts missing {host}")
r1_cfg_file = os.path.join(COMPOSE, "r1serve.yaml")
out = subprocess.run([BIN, "serve", "--config", r1_cfg_file, "--print-config"],
                     capture_output=True, text=True)
check(out.returncode == 0, f"[compose] r1serve refuses r1serve.yaml: {out.stderr.strip()}")
r1_cfg = yaml.safe_load(open(r1_cfg_file))
prom = yaml.safe_load(open(os.path.join(SRC, "deploy", "prometheus", "prometheus.yml")))
target = prom["scrape_configs"][0]["static_configs"][0]["targets"][0]
check(target == f"r1serve:{r1_cfg['port']}", f"[compose] Prometheus scrapes {target}")
check(f"{r1_cfg['port']}:{r1_cfg['port']}" in services["r1serve"]["ports"][0], "[compose] port")
check("/health" in " ".join(open(os.path.join(SRC, "deploy", "docker", "Dockerfile")).read().split()),
      "[docker] HEALTHCHECK on /health")

# Per-overlay specifics.
edge_cfg = yaml.safe_load(config_of(render("edge"), "r1serve-config")["data"]["config.yaml"])
check(edge_cfg.get("dtype") == "int8", "[edge] int8 weights")
spot = render("spot")
spot_cfg = yaml.safe_load(config_of(spot, "r1serve-config")["data"]["config.yaml"])
check(spot_cfg.get("checkpoint-store", "off").startswith("redis://redis:"),
      "[spot] checkpoints into the cluster's Redis")
check(spot_cfg.get("spot-notice") in ("aws", "gcp"), "[spot] reads the spot notice")
spot_egress = by_kind(spot, "NetworkPolicy")[0]["spec"]["egress"]
check(any(t.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name") == "redis"
          for e in spot_egress for t in e.get("to", [])), "[spot] egress to Redis")
check(any(t.get("ipBlock", {}).get("cidr") == "169.254.169.254/32"
          for e in spot_egress for t in e.get("to", [])), "[spot] egress to the metadata endpoint")
spot_pod = by_kind(spot, "Deployment")[0]["spec"]["template"]["spec"]
check(spot_pod["terminationGracePeriodSeconds"] <= 30, "[spot] grace inside GCP's 30 s notice")
check(spot_pod["affinity"]["nodeAffinity"], "[spot] on spot nodes")

if failures:
    print("\n".join("FAIL " + f for f in failures))
    sys.exit(1)
print(f"ok: {len(OVERLAYS)} overlays rendered and checked; compose checked")
