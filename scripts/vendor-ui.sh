#!/usr/bin/env bash
# Copies the web UI's libraries from the npm registry into crates/web/assets/vendor/, or checks
# that the copies there are exactly the published files.
#
# Usage: ./scripts/vendor-ui.sh [--check]
#
#   (no option)  `npm ci` in tests/browser (whose package-lock.json pins each library's version
#                and integrity hash), then copy each file listed in FILES below.
#   --check      `npm ci` likewise, then compare: exit 1 when a vendored file differs from the
#                package's, is missing, or when the vendor folder holds a file not listed.
#
# The versions live in tests/browser/package.json; change them there, run this script, commit.

set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1

NPM_DIR=tests/browser
VENDOR=crates/web/assets/vendor

# "package|file in the package|vendored name"
FILES=(
    "cytoscape|dist/cytoscape.esm.min.mjs|cytoscape/cytoscape.esm.min.mjs"
    "cytoscape|LICENSE|cytoscape/LICENSE"
    "cytoscape-fcose|cytoscape-fcose.js|cytoscape-fcose/cytoscape-fcose.js"
    "cytoscape-fcose|LICENSE|cytoscape-fcose/LICENSE"
    "cose-base|cose-base.js|cose-base/cose-base.js"
    "cose-base|LICENSE|cose-base/LICENSE"
    "layout-base|layout-base.js|layout-base/layout-base.js"
    "layout-base|LICENSE|layout-base/LICENSE"
    "@upsetjs/venn.js|build/venn.esm.js|venn.js/venn.esm.js"
    "@upsetjs/venn.js|LICENSE|venn.js/LICENSE"
)

CHECK=0
case "${1:-}" in
    --check) CHECK=1 ;;
    "") ;;
    *)
        sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
        exit 2
        ;;
esac

# npm ci installs exactly what the lock file names and checks each package's integrity hash.
(cd "$NPM_DIR" && npm ci --no-audit --no-fund) || exit 1

version_of() {
    node -e 'console.log(require(process.argv[1]).version)' "./$NPM_DIR/node_modules/$1/package.json"
}

status=0
listed=()
for entry in "${FILES[@]}"; do
    IFS='|' read -r pkg src dst <<<"$entry"
    from="$NPM_DIR/node_modules/$pkg/$src"
    to="$VENDOR/$dst"
    listed+=("$to")
    if [[ ! -f "$from" ]]; then
        echo "error: $pkg has no $src (version $(version_of "$pkg"))" >&2
        status=1
        continue
    fi
    if [[ $CHECK -eq 1 ]]; then
        if ! cmp -s "$from" "$to"; then
            echo "differs from $pkg@$(version_of "$pkg") $src: $to" >&2
            status=1
        fi
    else
        mkdir -p "$(dirname "$to")"
        cp "$from" "$to"
        echo "$pkg@$(version_of "$pkg") $src -> $to"
    fi
done

if [[ $CHECK -eq 1 ]]; then
    while IFS= read -r f; do
        if [[ ! " ${listed[*]} " == *" $f "* ]]; then
            echo "not from a package: $f" >&2
            status=1
        fi
    done < <(find "$VENDOR" -type f | sort)
    [[ $status -eq 0 ]] && echo "vendored UI libraries: ${#FILES[@]} files equal their npm packages"
fi
exit $status
