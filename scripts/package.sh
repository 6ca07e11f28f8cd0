#!/usr/bin/env bash
# Every published crate packages and would publish: `cargo package` (which builds each packaged
# crate from its .crate file alone), then `cargo publish --dry-run`. The crates are every
# workspace member whose `publish` is not false, so a new crate is checked without editing this
# file. They are packaged together: cargo resolves each one's dependencies on the others from
# the .crate files just made, so none needs to be on crates.io first.
set -euo pipefail
cd "$(dirname "$0")/.."

mapfile -t crates < <(cargo metadata --format-version 1 --no-deps --locked | python3 -c '
import json, sys
for p in json.load(sys.stdin)["packages"]:
    if p["publish"] != []:
        print(p["name"])
')
[ ${#crates[@]} -gt 0 ] || { echo "package: no published crates found" >&2; exit 1; }
echo "package: ${crates[*]}"
selection=()
for crate in "${crates[@]}"; do selection+=(-p "$crate"); done

# What a .crate must carry besides the code: both licences and the README crates.io shows.
for crate in "${crates[@]}"; do
    files=$(cargo package --locked --allow-dirty --list -p "$crate")
    for need in LICENSE-MIT LICENSE-APACHE README.md Cargo.toml; do
        grep -qx "$need" <<<"$files" || { echo "package: $crate's .crate lacks $need" >&2; exit 1; }
    done
done

cargo package --locked --allow-dirty "${selection[@]}"
# crates.io refuses a .crate over 10 MiB.
for crate in "${crates[@]}"; do
    version=$(cargo metadata --format-version 1 --no-deps --locked | python3 -c "
import json, sys
print(next(p['version'] for p in json.load(sys.stdin)['packages'] if p['name'] == '$crate'))")
    file="${CARGO_TARGET_DIR:-target}/package/$crate-$version.crate"
    size=$(stat -c %s "$file")
    echo "package: $file, $size bytes"
    [ "$size" -le $((10 * 1024 * 1024)) ] || { echo "package: $file is over crates.io's 10 MiB" >&2; exit 1; }
done
# The packages were built and tested above; the dry run adds the registry's own checks.
cargo publish --locked --allow-dirty --dry-run --no-verify "${selection[@]}"
