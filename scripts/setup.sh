#!/usr/bin/env bash
# Create .venv (if missing) and install medzoo with its test tools. torch/torchvision are pinned to the builds
# this project is tested with; install them first so no other package pulls a different torch.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet torch==2.14.1 torchvision==0.29.1
.venv/bin/python -m pip install --quiet -e ".[all,dev]"
.venv/bin/python -c "import torch, zoo; print(f'medzoo ready: torch {torch.__version__}, {len(zoo.list_models())} models')"
