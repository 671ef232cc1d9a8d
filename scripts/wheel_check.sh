#!/usr/bin/env bash
# The wheel as a pip user gets it: built from this checkout, installed with the core dependencies only (no extra)
# into a fresh venv, and run from a folder outside the checkout. It must import, list every model (U-Nets
# included, with no MONAI or smp installed), name `pip install 'medzoo[seg]'` when a U-Net needs them, and default
# its outputs to ./medzoo-runs (the committed boards only inside a clone).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
start=$(date +%s)
mkdir "$work/src"  # built from a copy: setuptools writes egg-info and build/ into its source folder
git ls-files -co --exclude-standard -- pyproject.toml README.md LICENSE zoo benchmarks | tar -cf - -T - | tar -xf - -C "$work/src"
"$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$work/dist" "$work/src"
"$PYTHON" -m venv "$work/venv"
py="$work/venv/bin/python"
quiet() { grep -v "^WARNING: Location .* is ignored" || true; }  # this machine's pip config names absent indexes
"$py" -m pip install --quiet torch==2.14.1 torchvision==0.29.1 2> >(quiet >&2)  # the pins, before anything else
"$py" -m pip install --quiet "$work"/dist/medzoo-*.whl 2> >(quiet >&2)
cd "$work"

fail() { echo "wheel check FAILED: $*" >&2; exit 1; }
extras=$("$py" -c "
import re
from zoo.extras import EXTRAS
print(' '.join(re.split('[<>=]', r)[0] for e in EXTRAS.values() for r in e.requirements))")
for pkg in $extras; do
    if "$py" -m pip show --quiet "$pkg" 2>/dev/null; then fail "the core install pulled in $pkg"; fi
done
[[ $("$work/venv/bin/medzoo" --version) =~ ^medzoo\ [0-9] ]] || fail "medzoo --version"
"$py" -c "
from importlib.metadata import distribution
d = distribution('medzoo')
assert d.metadata['License-Expression'] == 'Apache-2.0' and any(f.name == 'LICENSE' for f in d.files), 'license'
" || fail "the wheel's license metadata or LICENSE file"
"$py" -c "import zoo, benchmarks; assert zoo.__file__.startswith('$work/venv'), zoo.__file__" || fail "import zoo"
listing=$("$work/venv/bin/medzoo" ls --format plain) || fail "medzoo ls"
for name in unet2015 attention_unet_w32 unet_resnet18 resnet18 tf_efficientnet_lite0; do
    grep -q "^$name " <<< "$listing" || fail "medzoo ls does not list $name"
done
"$work/venv/bin/medzoo" ls suites --format plain > /dev/null || fail "medzoo ls suites"
if msg=$("$py" -c "import zoo; zoo.create_model('attention_unet_w32', num_classes=1)" 2>&1); then
    fail "a U-Net was built without MONAI"
fi
grep -q "pip install 'medzoo\[seg\]'" <<< "$msg" || fail "building a U-Net without [seg] said: $msg"
# outside a checkout: outputs default to ./medzoo-runs, and --committed says it needs a clone
msg=$("$work/venv/bin/medzoo" leaderboard 2>&1) && fail "leaderboard with an empty store succeeded"
grep -q "no results in medzoo-runs/results" <<< "$msg" || fail "leaderboard's default store: $msg"
msg=$("$work/venv/bin/medzoo" leaderboard --committed 2>&1) && fail "leaderboard --committed outside a checkout"
grep -q "is not inside one" <<< "$msg" || fail "leaderboard --committed outside a checkout said: $msg"
echo "wheel check ok: core-only install outside the checkout in $(( $(date +%s) - start )) s" \
     "($(du -sm "$work/venv" | cut -f1) MB venv)"
