#!/bin/sh
# `whale chat --prompt "What is 487 + 395?" --color never` on the embedded model (the README's
# acceptance check): the reply shows reasoning (between the <think> and </think> lines that plain
# output puts around it) and then an answer containing 882.
# Usage: chat_embedded_test.sh PATH/TO/whale
set -u
whale=$1
out=$(mktemp) || exit 1
err=$(mktemp) || exit 1
trap 'rm -f "$out" "$err"' EXIT
if ! "$whale" chat --prompt "What is 487 + 395?" --color never >"$out" 2>"$err"; then
  echo "FAIL: whale chat exited with an error:"
  cat "$err"
  exit 1
fi
echo "--- reply ---"
cat "$out"
echo "--- stderr ---"
cat "$err"
if ! grep -qx '</think>' "$out"; then
  echo "FAIL: no reasoning section (no </think> line) in the reply"
  exit 1
fi
reasoning=$(sed -n '/^<think>$/,/^<\/think>$/p' "$out" | sed '1d;$d' | tr -d ' \t\n')
if [ -z "$reasoning" ]; then
  echo "FAIL: the reasoning is empty"
  exit 1
fi
answer=$(sed '1,/^<\/think>$/d' "$out")
if ! printf '%s\n' "$answer" | grep -Eq '(^|[^0-9])882([^0-9]|$)'; then
  echo "FAIL: the answer does not contain 882"
  exit 1
fi
echo "PASS"
