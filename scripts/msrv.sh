#!/usr/bin/env bash
# The declared MSRV holds: clippy.toml's msrv is the workspace's rust-version (so clippy's
# incompatible_msrv lint checks std APIs against it), and no locked dependency, on any platform,
# declares a newer rust-version than ours.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo metadata --format-version 1 --locked | python3 -c '
import json, re, sys

def parse(v):
    return tuple(int(x) for x in (v.split(".") + ["0", "0"])[:3])

meta = json.load(sys.stdin)
members = set(meta["workspace_members"])
ours = {p["rust_version"] for p in meta["packages"] if p["id"] in members and p["rust_version"]}
if len(ours) != 1:
    sys.exit(f"msrv: workspace members declare {sorted(ours) or 'no'} rust-version; want exactly one")
msrv = ours.pop()

with open("clippy.toml") as f:
    clippy = re.search(r"^msrv\s*=\s*\"([^\"]+)\"", f.read(), re.M)
if not clippy or parse(clippy.group(1)) != parse(msrv):
    sys.exit(f"msrv: clippy.toml msrv is {clippy.group(1) if clippy else None}, rust-version is {msrv}")

newer = sorted(
    (p["name"], p["version"], p["rust_version"])
    for p in meta["packages"]
    if p["id"] not in members and p["rust_version"] and parse(p["rust_version"]) > parse(msrv)
)
for name, version, rv in newer:
    print(f"msrv: {name} {version} needs Rust {rv}, newer than our rust-version {msrv}")
if newer:
    sys.exit(1)
deps = sum(p["id"] not in members for p in meta["packages"])
print(f"msrv: rust-version {msrv}; clippy.toml agrees; none of {deps} locked dependencies needs newer")
'
