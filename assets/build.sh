#!/usr/bin/env bash
# Build the compiled design-system assets of platforma into
# platforma/web/static/ (css/, fonts/, js/). The output is committed, so
# installing and running the app needs no Node; run this only after changing
# assets/scss/ or the pinned versions in assets/package.json.
#
# Usage (from any directory): bash assets/build.sh
set -euo pipefail

ASSETS_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd -- "$ASSETS_DIR/.." && pwd)"
STATIC_DIR="$REPO_ROOT/platforma/web/static"
CSS_DIR="$STATIC_DIR/css"
FONTS_DIR="$STATIC_DIR/fonts"
JS_DIR="$STATIC_DIR/js"

cd "$ASSETS_DIR"

if [ ! -d node_modules ] \
  || [ ! -x node_modules/.bin/sass ] \
  || [ ! -d node_modules/govuk-frontend/dist/govuk ] \
  || [ ! -d node_modules/@fontsource/source-sans-3/files ]; then
  echo "build.sh: installing pinned packages (npm ci)" >&2
  npm ci --no-audit --no-fund
fi

GOVUK_DIR="node_modules/govuk-frontend/dist/govuk"
FONT_PKG="node_modules/@fontsource/source-sans-3"

pkg_version() {
  node -p "require('./$1/package.json').version"
}
GOVUK_VERSION="$(pkg_version node_modules/govuk-frontend)"
FONT_VERSION="$(pkg_version "$FONT_PKG")"
SASS_VERSION="$(pkg_version node_modules/sass)"

if [ "$GOVUK_VERSION" != "6.3.0" ]; then
  echo "build.sh: govuk-frontend is $GOVUK_VERSION, expected 6.3.0 (must match govuk-frontend-jinja 4.1.0); run 'npm ci' in assets/" >&2
  exit 1
fi

mkdir -p "$CSS_DIR" "$FONTS_DIR" "$JS_DIR"

# --- CSS -------------------------------------------------------------------
tmp_css="$(mktemp)"
trap 'rm -f "$tmp_css"' EXIT

node_modules/.bin/sass \
  --load-path=node_modules \
  --style=compressed \
  --no-source-map \
  --quiet-deps \
  scss/platforma.scss "$tmp_css"

# govuk-frontend's footer styles include a spacing rule for the GOV.UK crown
# SVG (.govuk-footer__crown); we never render that SVG, so drop the rule.
sed -i -E 's/\.govuk-footer__crown\{[^}]*\}//g' "$tmp_css"

# Guard against any GOV.UK branding or asset path creeping back in.
fail=0
for pattern in 'GDS Transport' 'govuk-crest' 'crown' '/assets/'; do
  if grep -qiF -- "$pattern" "$tmp_css"; then
    echo "build.sh: compiled CSS contains forbidden '$pattern'" >&2
    fail=1
  fi
done
if grep -oE 'url\([^)]*\)' "$tmp_css" | grep -vE '^url\("?/static/' >&2; then
  echo "build.sh: compiled CSS has url()s outside /static/ (listed above)" >&2
  fail=1
fi
for class in pf-header pf-nav pf-backoffice pf-card-grid pf-table-wrap pf-code pf-qr; do
  if ! grep -qF ".$class" "$tmp_css"; then
    echo "build.sh: compiled CSS lacks .$class" >&2
    fail=1
  fi
done
[ "$fail" -eq 0 ] || exit 1

cp "$tmp_css" "$CSS_DIR/platforma.css"
chmod 644 "$CSS_DIR/platforma.css"

# --- Fonts: Source Sans 3, 400 and 700 normal, latin + latin-ext, woff2 ----
for subset in latin latin-ext; do
  for weight in 400 700; do
    cp "$FONT_PKG/files/source-sans-3-$subset-$weight-normal.woff2" "$FONTS_DIR/"
  done
done
cp "$FONT_PKG/LICENSE" "$FONTS_DIR/OFL.txt"

# --- JavaScript --------------------------------------------------------------
# The source map is not shipped, so drop the comment that points at it.
sed -e 's|//# sourceMappingURL=govuk-frontend\.min\.js\.map$||' \
  "$GOVUK_DIR/govuk-frontend.min.js" > "$JS_DIR/govuk-frontend.min.js"

# --- Versions ----------------------------------------------------------------
cat > "$CSS_DIR/VERSION" <<EOF
govuk-frontend $GOVUK_VERSION
@fontsource/source-sans-3 $FONT_VERSION
sass $SASS_VERSION
EOF

css_size="$(wc -c < "$CSS_DIR/platforma.css" | tr -d ' ')"
echo "build.sh: wrote platforma/web/static/css/platforma.css ($css_size bytes), fonts/, js/govuk-frontend.min.js, css/VERSION"
