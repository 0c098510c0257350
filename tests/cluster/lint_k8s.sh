#!/usr/bin/env bash
# deploy/k8s is not tested on a cluster (there is none here); its manifests are
# linted: YAML syntax and style by yamllint (Debian), each document has an
# apiVersion, a kind and a metadata.name, and kustomization.yaml applies them all. Exit 77 (ctest: skipped) without yamllint.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v yamllint >/dev/null; then
  echo "SKIPPED: yamllint is not installed (scripts/setup.sh installs it)"
  exit 77
fi
yamllint -s -c deploy/k8s/.yamllint deploy/k8s
python3 - deploy/k8s/*.yaml <<'PY'
import sys, yaml
bad = 0
for path in sys.argv[1:]:
    for doc in yaml.safe_load_all(open(path)):
        if doc is None:
            continue
        missing = [k for k in ("apiVersion", "kind") if k not in doc]
        if doc.get("kind") != "Kustomization" and not (doc.get("metadata") or {}).get("name"):
            missing.append("metadata.name")
        if missing:
            print(f"{path}: {doc.get('kind', '?')}: missing {', '.join(missing)}")
            bad += 1
# Every manifest is applied by kustomization.yaml, and everything it lists exists.
import os
listed = set(yaml.safe_load(open("deploy/k8s/kustomization.yaml"))["resources"])
present = {os.path.basename(p) for p in sys.argv[1:]} - {"kustomization.yaml"}
for f in sorted(present - listed):
    print(f"deploy/k8s/{f}: not in kustomization.yaml resources"); bad += 1
for f in sorted(listed - present):
    print(f"kustomization.yaml lists {f}, which does not exist"); bad += 1
sys.exit(1 if bad else 0)
PY
if [[ -n ${1:-} ]]; then
  cfg=$(mktemp)
  trap 'rm -f "$cfg"' EXIT
  python3 -c 'import sys, yaml; sys.stdout.write(yaml.safe_load(open("deploy/k8s/configmap.yaml"))["data"]["codey.yaml"])' > "$cfg"
  # The model files are not here: codey reports them unusable, but a key or
  # value it does not know is an error.
  "$1" list --config "$cfg" >/dev/null || { echo "deploy/k8s/configmap.yaml: codey.yaml is not a valid codey config"; exit 1; }
fi
echo "deploy/k8s: yamllint and structure checks passed"
