#!/usr/bin/env bash
# Re-extract the translatable messages, merge them into the English catalogue and compile it.
#
#   scripts/update_translations.sh            (from any directory)
#   PYBABEL=/path/to/pybabel scripts/update_translations.sh
#
# Polish is the source language (msgids are Polish). After running, translate every empty or
# fuzzy msgstr in platforma/translations/en/LC_MESSAGES/messages.po, run this script again
# (it recompiles messages.mo) and check with:  pytest tests/unit/test_translations.py
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if [[ -n "${PYBABEL:-}" ]]; then
  pybabel=("$PYBABEL")
elif [[ -x .venv/bin/pybabel ]]; then
  pybabel=(.venv/bin/pybabel)
elif command -v pybabel >/dev/null 2>&1; then
  pybabel=(pybabel)
else
  pybabel=(python3 -m babel.messages.frontend)
fi

TRANSLATIONS=platforma/translations
POT="$TRANSLATIONS/messages.pot"
LOCALES=(en)

"${pybabel[@]}" extract -F babel.cfg -k _l -k lazy_gettext \
  --sort-by-file --project platforma --copyright-holder "platforma" \
  -o "$POT" platforma

for locale in "${LOCALES[@]}"; do
  po="$TRANSLATIONS/$locale/LC_MESSAGES/messages.po"
  if [[ -f "$po" ]]; then
    "${pybabel[@]}" update -i "$POT" -d "$TRANSLATIONS" -D messages -l "$locale" --no-fuzzy-matching
  else
    "${pybabel[@]}" init -i "$POT" -d "$TRANSLATIONS" -D messages -l "$locale"
  fi
done

# --statistics reports how many messages are translated; untranslated ones fall back to Polish.
"${pybabel[@]}" compile -d "$TRANSLATIONS" -D messages --statistics
