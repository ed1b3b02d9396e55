"""Writes the serving tests' tokenizer: byte-level BPE (GPT-2 byte alphabet, merges learned here
from a small built-in English corpus) plus DeepSeek-R1's special tokens, and a tokenizer_config.json
with an R1-style chat template that opens <think> after <｜Assistant｜>.

Run with /usr/bin/python3 from this folder; the output is deterministic."""
import collections
import json
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))
N_MERGES = 160

CORPUS = """
The weather in Paris is sunny today, and the weather in London is rainy. What is the weather
like where you are? I think the answer is that it depends on the city. Let me think about it:
first, check the temperature; then check the wind. The function returns a JSON object with the
city name and the temperature in degrees. Hello, how are you? I am fine, thank you. This is a
small test of the server: it streams tokens, reasoning and content, and it calls tools.
"""


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def main():
    byte_map = bytes_to_unicode()
    vocab = {}
    for b in range(256):
        vocab[byte_map[b]] = len(vocab)
    words = collections.Counter(re.findall(r" ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+", CORPUS))
    seqs = {w: [byte_map[b] for b in w.encode()] for w in words}
    merges = []
    while len(merges) < N_MERGES:
        pairs = collections.Counter()
        for w, count in words.items():
            s = seqs[w]
            for a, b in zip(s, s[1:]):
                pairs[(a, b)] += count
        if not pairs:
            break
        best = max(sorted(pairs), key=lambda p: pairs[p])
        merged = best[0] + best[1]
        merges.append(best[0] + " " + best[1])
        vocab[merged] = len(vocab)
        for w in seqs:
            s, out, i = seqs[w], [], 0
            while i < len(s):
                if i + 1 < len(s) and (s[i], s[i + 1]) == best:
                    out.append(merged)
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            seqs[w] = out
    specials = ["<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>",
                "<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>", "<｜tool▁call▁begin｜>",
                "<｜tool▁call▁end｜>", "<｜tool▁outputs▁begin｜>", "<｜tool▁outputs▁end｜>",
                "<｜tool▁output▁begin｜>", "<｜tool▁output▁end｜>", "<｜tool▁sep｜>"]
    # As in DeepSeek-R1's tokenizer, <think> and </think> are added tokens but not special ones.
    added = [(s, True) for s in specials] + [("<think>", False), ("</think>", False)]
    added_tokens = []
    for content, special in added:
        added_tokens.append({"id": len(vocab) + len(added_tokens), "content": content,
                             "single_word": False, "lstrip": False, "rstrip": False,
                             "normalized": False, "special": special})
    tokenizer = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added_tokens,
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                          "use_regex": True},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False,
                           "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                    "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False, "vocab": vocab, "merges": merges},
    }
    with open(os.path.join(HERE, "..", "tokenizer", "chat", "r1-style.jinja"), encoding="utf-8") as f:
        template = f.read()
    config = {
        "add_bos_token": True, "add_eos_token": False,
        "bos_token": specials[0], "eos_token": specials[1], "pad_token": specials[1],
        "clean_up_tokenization_spaces": False, "model_max_length": 4096,
        "tokenizer_class": "LlamaTokenizerFast", "chat_template": template,
    }
    with open(os.path.join(HERE, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tokenizer, f, ensure_ascii=False, indent=1)
        f.write("\n")
    with open(os.path.join(HERE, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(len(vocab) + len(added_tokens), "tokens")


main()
