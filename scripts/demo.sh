#!/usr/bin/env bash
# The main job: one question to the embedded whale-tiny-r1 (models/whale-tiny-r1, linked into the
# binary), which reasons inside <think>...</think> (dimmed on a terminal) and then answers.
#   scripts/demo.sh path/to/whale
set -euo pipefail
whale=${1:?usage: $0 path/to/whale}
echo "whale chat --prompt \"What is 487 + 395?\"   (interactive: whale chat)"
"$whale" chat --prompt "What is 487 + 395?"
