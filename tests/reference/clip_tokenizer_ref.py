"""clip_tokenizer_ref.py — an independent Python twin of OpenAI CLIP's tokenizer.

The algorithm is the one of CLIP's simple_tokenizer.py (REFERENCE.md §3),
written from its description with Python's own string functions and the
`regex` module, so that it shares no code with the C tokenizer:

    clean:        ftfy.fix_text, html.unescape twice, strip,
                  regex \\s+ -> " ", strip, str.lower()
    pre-tokenise: the CLIP pattern below, regex.IGNORECASE
    encode:       UTF-8 bytes -> GPT-2's byte/unicode table, "</w>" on the
                  last symbol, merges by lowest rank
    wrap:         [<|startoftext|>] + ids + [<|endoftext|>], cut to
                  context_length with the last id forced to <|endoftext|>,
                  zero padded.

ftfy is not packaged for Debian 12, so fix_text is replaced by the subset of
it that changes prompts, with unicodedata: ftfy's Latin ligature table,
its curly-quote straightening, then NFC, in ftfy's order.  (ftfy also
repairs mojibake, unescapes HTML itself, folds full-width forms and removes
control characters; the C tokenizer implements the same subset.)

The vocabulary is read from a folder: OpenAI's bpe_simple_vocab_16e6.txt.gz
when present (the vocabulary is then built as simple_tokenizer builds it),
else Hugging Face's vocab.json + merges.txt.

    ref = ClipTokenizerRef(os.path.join(os.environ["AGC_SHARED_DIR"], "clip-vocab"))
    ids = ref.encode("a photo of a fox")   # 77 ints
"""

import gzip
import html
import json
import os
import unicodedata

import regex

SOT = "<|startoftext|>"
EOT = "<|endoftext|>"
N_OPENAI_MERGES = 49152 - 256 - 2

PATTERN = regex.compile(
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
    regex.IGNORECASE,
)
WHITESPACE = regex.compile(r"\s+")

# ftfy's LIGATURES (typographic ligatures and legacy digraphs), then its
# uncurl_quotes characters.
LIGATURES = str.maketrans({
    "\u0132": "IJ", "\u0133": "ij", "\u0149": "\u02bcn",
    "\u01c4": "D\u017d", "\u01c5": "D\u017e", "\u01c6": "d\u017e",
    "\u01c7": "LJ", "\u01c8": "Lj", "\u01c9": "lj",
    "\u01ca": "NJ", "\u01cb": "Nj", "\u01cc": "nj",
    "\u01f1": "DZ", "\u01f2": "Dz", "\u01f3": "dz",
    "\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl",
    "\ufb05": "\u017ft", "\ufb06": "st",
})
QUOTES = str.maketrans({
    **{c: "'" for c in "\u02bc\u2018\u2019\u201a\u201b"},
    **{c: '"' for c in "\u201c\u201d\u201e\u201f"},
})


def fix_text_subset(text):
    """ftfy.fix_text restricted to ligatures, curly quotes and NFC."""
    return unicodedata.normalize("NFC", text.translate(LIGATURES).translate(QUOTES))


def clean(text):
    text = html.unescape(html.unescape(fix_text_subset(text))).strip()
    return WHITESPACE.sub(" ", text).strip().lower()


def byte_to_unicode():
    """GPT-2's table: printable Latin-1 bytes stand for themselves, the
    others (in byte order) for U+0100 onwards.  Insertion order = id order."""
    printable = [b for b in range(256)
                 if ord("!") <= b <= ord("~") or 0xa1 <= b <= 0xac or 0xae <= b <= 0xff]
    table = {b: chr(b) for b in printable}
    shifted = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + shifted)
            shifted += 1
    return table


class ClipTokenizerRef:
    def __init__(self, vocab_dir=None):
        if vocab_dir is None:
            vocab_dir = os.path.join(os.environ["AGC_SHARED_DIR"], "clip-vocab")
        self.byte_table = byte_to_unicode()
        gz_path = os.path.join(vocab_dir, "bpe_simple_vocab_16e6.txt.gz")
        if os.path.exists(gz_path):
            with gzip.open(gz_path, "rb") as f:
                lines = f.read().decode("utf-8").split("\n")
            merges = [tuple(line.split()) for line in lines[1:1 + N_OPENAI_MERGES]]
            symbols = list(self.byte_table.values())
            symbols += [s + "</w>" for s in symbols]
            symbols += ["".join(m) for m in merges]
            symbols += [SOT, EOT]
            self.vocab = {s: i for i, s in enumerate(symbols)}
        else:
            with open(os.path.join(vocab_dir, "vocab.json"), encoding="utf-8") as f:
                self.vocab = json.load(f)
            with open(os.path.join(vocab_dir, "merges.txt"), encoding="utf-8") as f:
                lines = f.read().rstrip("\n").split("\n")
            if lines[0].startswith("#version"):
                lines = lines[1:]
            merges = [tuple(line.split()) for line in lines]
        self.ranks = {m: r for r, m in enumerate(merges)}
        self.sot = self.vocab[SOT]
        self.eot = self.vocab[EOT]
        self.cache = {}

    def bpe(self, token):
        """The symbols of one byte-encoded pre-token after all merges."""
        if token in self.cache:
            return self.cache[token]
        word = list(token[:-1]) + [token[-1] + "</w>"]
        while len(word) > 1:
            pairs = {(a, b) for a, b in zip(word, word[1:])}
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            merged, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        self.cache[token] = word
        return word

    def encode_text(self, text):
        """The ids of a text, without the start and end tokens."""
        ids = []
        for token in PATTERN.findall(clean(text)):
            if token in (SOT, EOT):
                ids.append(self.vocab[token])
                continue
            encoded = "".join(self.byte_table[b] for b in token.encode("utf-8"))
            ids.extend(self.vocab[s] for s in self.bpe(encoded))
        return ids

    def encode(self, text, context_length=77):
        ids = [self.sot] + self.encode_text(text) + [self.eot]
        if len(ids) > context_length:
            ids = ids[:context_length]
            ids[-1] = self.eot
        return ids + [0] * (context_length - len(ids))
