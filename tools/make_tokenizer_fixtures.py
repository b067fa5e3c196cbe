#!/usr/bin/env python3
"""Reference fixtures for tailor's tokenizer, made with Hugging Face `tokenizers`.

Two steps:

  make_tokenizer_fixtures.py corpus OUT.json
      Writes the test corpus (no dependencies; deterministic). The committed copy is
      tests/data/tokenizer/corpus.json.

  make_tokenizer_fixtures.py fixtures CORPUS.json OUT_DIR NAME=TOKENIZER_JSON...
      Runs `tokenizers` (only installed on the GPU machine) over the corpus for each tokenizer and writes
      OUT_DIR/NAME.json with, per text: the ids in four modes (add_special_tokens x parse special tokens),
      decode results, plus decodes of random id sequences and a sample of id_to_token. Modes whose ids equal
      the "plain" mode are omitted to keep the files small; readers treat a missing mode as equal to "plain".

Modes (parse special = HF's default; not parsing = `encode_special_tokens = True`, transformers'
split_special_tokens):
  plain   add_special_tokens=False, special tokens in the text are NOT parsed
  parse   add_special_tokens=False, special tokens parsed
  add     add_special_tokens=True,  not parsed
  both    add_special_tokens=True,  parsed

Usage on the GPU machine (see tests/data/tokenizer/README.md):
  python3 tools/make_tokenizer_fixtures.py fixtures tests/data/tokenizer/corpus.json $OUT \
      qwen3=.gpu/tok/qwen3/tokenizer.json llama3=.gpu/tok/llama3/tokenizer.json llama2=.gpu/tok/llama2/tokenizer.json
"""
import json
import random
import sys

SPECIALS = [
    "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<think>", "</think>", "<tool_call>", "</tool_call>",
    "<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>",
    "<s>", "</s>", "<unk>", "<|fim_prefix|>", "<|reserved_special_token_5|>",
]


def build_corpus():
    texts = []

    def add(category, text):
        texts.append({"id": len(texts), "category": category, "text": text})

    # English prose and contractions (the (?i:'s|'t|...) part of the regexes).
    add("prose", "The quick brown fox jumps over the lazy dog.")
    add("prose", "Hello, world! How are you doing today? I'm fine, thanks; and you?")
    add("prose", "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age "
                 "of foolishness, it was the epoch of belief, it was the epoch of incredulity.")
    add("prose", "\"Don't,\" she said. \"We'll see; they've gone, he'd know, I'm sure it's fine, you're right.\"")
    add("prose", "DON'T SHOUT. WE'LL SEE. THEY'VE GONE. HE'D KNOW. I'M SURE. IT'S FINE. YOU'RE RIGHT.")
    add("prose", "'s 't 're 've 'm 'll 'd 'S 'T 'RE 'Ve 'M 'LL 'D ' s '")
    add("prose", "rock'n'roll o'clock y'all ma'am don’t it’s (curly apostrophes) \u017f 'ſ")
    add("prose", "Mr. Smith paid $3.50 for 2 coffees at 7:45 a.m. on Jan. 5th, 2024 -- a 10% increase!")
    add("prose", "  Leading two spaces and a trailing one ")
    add("prose", "A sentence.\n\nA new paragraph after a blank line.\nAnd a third line.")
    # Code.
    add("code", "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n")
    add("code", "#include <stdio.h>\nint main(void) {\n\tprintf(\"%d\\n\", 42);\n\treturn 0;\n}\n")
    add("code", "for (int i = 0; i < n; ++i) { sum += a[i] * b[i]; }  // dot product")
    add("code", "{\"name\": \"tailor\", \"version\": [0, 1, 0], \"nested\": {\"a\": null, \"b\": true}}")
    add("code", "<html>\n  <body class=\"main\">\n    <p>Hi &amp; bye</p>\n  </body>\n</html>")
    add("code", "$ ls -la | grep '^d' && echo \"done\" > /dev/null 2>&1; x=$((1+2))")
    add("code", "SELECT id, name FROM users WHERE age >= 18 ORDER BY name DESC LIMIT 10;")
    add("code", "    \t    mixed indentation\t\t\ttabs   \t  ")
    add("code", "fn main() -> Result<(), Box<dyn Error>> { let v: Vec<u8> = vec![0xFF; 16]; Ok(()) }")
    add("code", "x = [i**2 for i in range(10) if i % 2 == 0]  # squares\nprint(f\"{x!r:>20}\")")
    add("code", "https://example.com/path/to/page?query=a+b&lang=en#section-2 mailto:someone@example.org")
    add("code", "$$\\int_0^\\infty e^{-x^2}\\,dx = \\frac{\\sqrt{\\pi}}{2}$$ and \\alpha_{i,j}")
    add("code", "| col A | col B |\n|-------|-------|\n| 1     | **bold** _it_ `code` |")
    # Numbers.
    add("numbers", "1234567890")
    add("numbers", "3.14159265358979 2.71828 -0.5 +7 1e10 6.022e23 0x1F 0b1010 0o777")
    add("numbers", "1,000,000 and 1.000.000 and 1 000 000 and 12345678901234567890123")
    add("numbers", "2024-01-15T10:30:00Z 555-123-4567 (800) 555 0199 #42 v1.2.3")
    add("numbers", "\u0661\u0662\u0663 \u0967\u0968\u0969 \u00bd \u00b2 \u2167 \u2460 \U0001d7d8\U0001d7d9 \uff11\uff12")
    add("numbers", "a1b22c333d4444e55555")
    # Whitespace runs.
    add("whitespace", "a  b")
    add("whitespace", "a   b    c     d")
    add("whitespace", "word" + " " * 17 + "word")
    add("whitespace", "    four leading")
    add("whitespace", "trailing    ")
    add("whitespace", "\n\n\n")
    add("whitespace", " \n \n  \n")
    add("whitespace", "\t\t\tx\t")
    add("whitespace", "a\u00a0b\u00a0\u00a0c")
    add("whitespace", "\u3000\u5168\u89d2\u3000space")
    add("whitespace", "line\u2028sep\u2029para\u0085nel")
    add("whitespace", "mongolian\u180evowel separator")
    add("whitespace", "zero\u200bwidth\u200cnon\u200djoiner")
    add("whitespace", "vt\x0bff\x0cend")
    add("whitespace", "\u2002en\u2003em\u2009thin\u200ahair\u202fnnbsp\u205fmath")
    add("whitespace", " ")
    add("whitespace", "  ")
    add("whitespace", "\n")
    add("whitespace", "")
    # CRLF.
    add("crlf", "line one\r\nline two\r\n\r\nline four\r\n")
    add("crlf", "\r\r\n\n\r")
    add("crlf", "a\rb\r\nc\n\rd")
    add("crlf", "  \r\n  indented after crlf")
    # Emoji.
    add("emoji", "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466 family")
    add("emoji", "\U0001f3f3\ufe0f\u200d\U0001f308 \U0001f3f4\u200d\u2620\ufe0f flags")
    add("emoji", "\U0001f44d\U0001f3fd \U0001f44b\U0001f3ff \U0001f9d1\U0001f3fb\u200d\U0001f4bb skin tones")
    add("emoji", "\U0001f1fa\U0001f1f8\U0001f1ef\U0001f1f5\U0001f1eb\U0001f1f7 regional indicators")
    add("emoji", "\u2764\ufe0f \u2764 1\ufe0f\u20e3 #\ufe0f\u20e3 \u00a9\ufe0f keycaps")
    add("emoji", "I love it \U0001f60d\U0001f60d\U0001f60d!!! \U0001f389\U0001f38a")
    add("emoji", "\U0001f600" * 12)
    # CJK.
    add("cjk", "\u4eca\u5929\u5929\u6c14\u5f88\u597d\uff0c\u6211\u4eec\u53bb\u516c\u56ed\u6563\u6b65\u5427\u3002")
    add("cjk", "\u65e5\u672c\u8a9e\u306e\u6587\u7ae0\u3067\u3059\u3002\u30ab\u30bf\u30ab\u30ca\u3082\u3042\u308a\u307e\u3059\u3002")
    add("cjk", "\ud55c\uad6d\uc5b4 \ubb38\uc7a5\uc785\ub2c8\ub2e4. \uc548\ub155\ud558\uc138\uc694!")
    add("cjk", "\u1112\u1161\u11ab\u1100\u1173\u11af conjoining jamo")
    add("cjk", "\u7e41\u9ad4\u4e2d\u6587\u8207\u7b80\u4f53\u4e2d\u6587\u6df7\u5408 mixed with English words")
    add("cjk", "\uff21\uff22\uff23\uff01\uff1f fullwidth \uff8a\uff9d\uff76\uff78 halfwidth")
    # RTL.
    add("arabic", "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645! \u0643\u064a\u0641 \u062d\u0627\u0644\u0643\u061f")
    add("arabic", "\u0628\u0650\u0633\u0652\u0645\u0650 \u0627\u0644\u0644\u0651\u064e\u0647\u0650 with harakat")
    add("arabic", "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd (Hebrew) \u0633\u0644\u0627\u0645 \u062f\u0646\u06cc\u0627 (Persian)")
    # Combining marks and normalization.
    add("combining", "e\u0301 vs \u00e9, A\u030a vs \u00c5, n\u0303 vs \u00f1")
    add("combining", "Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319\u0324\u031e\u0349\u035a\u032f\u031e\u0320\u034dA\u036b\u0357\u0334\u0362\u0335\u031c\u0330\u0354L\u0368\u0367\u0369\u0358\u0320G\u0311\u0357\u030e\u0305\u035b\u0341\u0334\u033b\u0348\u034d\u0354\u0339O\u0342\u030c\u030c\u0358\u0328\u0335\u0339\u033b\u031d\u0333")
    add("combining", "Ti\u1ebfng Vi\u1ec7t c\u00f3 d\u1ea5u: \u0111\u01b0\u1eddng ph\u1ed1")
    add("combining", "a\u0308\u0301 o\u0323\u0302 q\u0307\u0323 combining order")
    add("combining", "\u212b \u2126 \u00c5 \u03a9 \ufb01 \u2460 \u00aa compatibility")
    # Indic and others.
    add("hindi", "\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e! \u0915\u094d\u0937\u0924\u094d\u0930\u093f\u092f \u0921\u093c")
    add("hindi", "\u0b87\u0ba8\u0bcd\u0ba4\u0bbf\u0baf\u0bbe (Tamil) \u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35\u0e04\u0e23\u0e31\u0e1a (Thai)")
    add("other", "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440! \u0393\u03b5\u03b9\u03ac \u03c3\u03bf\u03c5 \u039a\u03cc\u03c3\u03bc\u03b5 \u10d2\u10d0\u10db\u10d0\u10e0\u10ef\u10dd\u10d1\u10d0")
    add("other", "\u1208\u12a0\u1208\u121d \u1230\u120b\u121d (Ge'ez) \u0540\u0561\u0575\u0565\u0580\u0565\u0576 \U00010330\U00010331")
    # Invalid-looking text (all valid UTF-8).
    add("invalid_looking", "\\ud800 \\udfff \\x00 \\xff \\u0000 literal escapes")
    add("invalid_looking", "\ufffd\ufffd replacement chars \ufffd")
    add("invalid_looking", "nul\x00inside and \x01\x02\x1f\x7f controls")
    add("invalid_looking", "\ufeffBOM at start and \ufeff inside")
    add("invalid_looking", "\ue000\uf8ff private use \U000f0000 \uffff\ufffe noncharacters")
    add("invalid_looking", "\U0001d518\U0001d52b\U0001d526\U0001d520\U0001d52c\U0001d521\U0001d522 math letters")
    add("invalid_looking", "\u00c3\u00a9 mojibake \u00e2\u20ac\u2122 \u00c2\u00a0")
    add("invalid_looking", "%F0%9F%98%80 &#x1F600; &#128512; \\U0001F600")
    # Added / special tokens written in the text (each tokenizer sees the others' as plain text).
    add("special", "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n")
    add("special", "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>")
    add("special", "<s>[INST] Hello [/INST] Hi</s>")
    add("special", "text<|endoftext|>more text<|end_of_text|>")
    add("special", "<think>\nLet me reason.\n</think>\n\nAnswer: 42")
    add("special", "<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call>")
    add("special", " <|im_end|> spaces around <s> and </s> ")
    add("special", "<|im_start|><|im_end|><s></s><|eot_id|><|eot_id|>")
    add("special", "<|im_start <|im_end| <|endoftext|| <<|im_end|>> <unk> <s >")
    add("special", "<|reserved_special_token_5|> <|fim_prefix|>def f():<|fim_suffix|>")
    add("special", "a<s>b</s>c<unk>d")
    # Very long words and runs.
    add("long", "a" * 1000)
    add("long", "supercalifragilisticexpialidocious" * 30)
    add("long", "7" * 500)
    add("long", "!" * 300)
    add("long", " " * 500 + "x")
    add("long", "\n" * 200)
    add("long", "ab" * 1500)
    add("long", "Pneumonoultramicroscopicsilicovolcanoconiosis Llanfairpwllgwyngyllgogerychwyrndrobwllllantysiliogogogoch")
    add("long", "aGVsbG8gd29ybGQgdGhpcyBpcyBhIGJhc2U2NCBibG9iIHRoYXQgZ29lcyBvbiBhbmQgb24gYW5kIG9u" * 4)
    add("long", "\u4e2d" * 300)
    add("long", "\U0001f600" * 100)
    # Leading spaces and single characters.
    add("leading", " hello")
    add("leading", "  hello")
    add("leading", "\thello")
    add("leading", "\nhello")
    add("leading", " 123")
    add("leading", " \u4f60\u597d")
    add("leading", " <s>")
    add("ascii", "".join(chr(c) for c in range(32, 127)))
    add("ascii", " ".join(chr(c) for c in range(32, 127)))
    for c in "a ZŻ9!\u00e9\u4e2d\U0001f600":
        add("single", c)
    # Triggers for the synthetic tokenizers' added tokens (lstrip/rstrip/single_word/normalized).
    add("synthetic", "before <sep> after  <sep>   end<sep>")
    add("synthetic", "a<note>b <note> c <note>_d <note>")
    add("synthetic", "Yesterday yesterday \uff59\uff45\uff53\uff54\uff45\uff52\uff44\uff41\uff59 yesterdays")
    add("synthetic", " <|user|> hi <|bot|>  there <|user|><|bot|>")
    add("synthetic", "<0x41> <0xFF> <unk> <bos> <eos>")
    add("synthetic", "Caf\u00e9 NA\u00cfVE \u00c9COLE x xx xxx 12.5, 3; ok? yes!")
    # A mixed paragraph.
    add("mixed", "Tailor \u2014 \u201cfast\u201d inference: 1,234 tok/s on \U0001f5a5\ufe0f; caf\u00e9 na\u00efve r\u00e9sum\u00e9 "
                 "\u00fcber stra\u00dfe \u0130stanbul \u00c6sir \u00f8re \u00df\u1e9e Stra\u00dfe.\n\t\u2192 \u00a7 \u00b6 \u2020 \u2022 \u2026")
    # Seeded random Unicode strings drawn from many blocks.
    rng = random.Random(20240601)
    blocks = [(0x20, 0x7E), (0xA0, 0x17F), (0x300, 0x36F), (0x370, 0x3FF), (0x400, 0x4FF), (0x590, 0x6FF),
              (0x900, 0x97F), (0xE00, 0xE7F), (0x1100, 0x11FF), (0x2000, 0x206F), (0x3000, 0x30FF),
              (0x4E00, 0x4FFF), (0xAC00, 0xAD00), (0xFF00, 0xFFEF), (0x1F300, 0x1F64F), (0x1F900, 0x1F9FF)]
    for _ in range(40):
        n = rng.randint(1, 40)
        s = []
        for _ in range(n):
            lo, hi = rng.choice(blocks)
            cp = rng.randint(lo, hi)
            if 0xD800 <= cp <= 0xDFFF:
                continue
            s.append(chr(cp))
            if rng.random() < 0.15:
                s.append(rng.choice([" ", "  ", "\n", "\t", "\r\n"]))
        add("random", "".join(s))
    return texts


def cmd_corpus(out_path):
    corpus = build_corpus()
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump({"about": "tailor tokenizer test corpus; written by tools/make_tokenizer_fixtures.py corpus",
                   "specials": SPECIALS, "texts": corpus}, f, ensure_ascii=True, indent=0)
        f.write("\n")
    print(f"{len(corpus)} texts -> {out_path}")


def random_id_sequences(tok, rng, n):
    """Id sequences biased to byte tokens and partial UTF-8, where decoders must repair or fuse bytes."""
    vocab = tok.get_vocab(with_added_tokens=True)
    size = tok.get_vocab_size(with_added_tokens=True)
    items = sorted(vocab.items(), key=lambda kv: kv[1])  # get_vocab's order changes from run to run
    byte_ids = [i for t, i in items if len(t) == 6 and t.startswith("<0x") and t.endswith(">")]
    single = [i for t, i in items if len(t) == 1]  # byte-level single bytes, SPM single chars
    specials = [i for t, i in items if t in SPECIALS]
    seqs = []
    for _ in range(n):
        length = rng.randint(1, 24)
        ids = []
        for _ in range(length):
            r = rng.random()
            if r < 0.3 and byte_ids:
                ids.append(rng.choice(byte_ids))
            elif r < 0.55 and single:
                ids.append(rng.choice(single))
            elif r < 0.62 and specials:
                ids.append(rng.choice(specials))
            else:
                ids.append(rng.randrange(size))
        seqs.append(ids)
    return seqs


MODES = (("plain", False, False), ("parse", False, True), ("add", True, False), ("both", True, True))


def cmd_fixtures(corpus_path, out_dir, specs):
    from tokenizers import Tokenizer

    with open(corpus_path, encoding="utf-8") as f:
        corpus = json.load(f)["texts"]
    for spec in specs:
        name, path = spec.split("=", 1)
        out = fixture_for(name, Tokenizer.from_file(path), corpus, MODES)
        with open(f"{out_dir}/{name}.json", "w", encoding="utf-8") as f:
            json.dump(out, f, ensure_ascii=True, separators=(",", ":"))
        print(f"{name}: {len(out['cases'])} cases, tokenizers {out['tokenizers_version']}")
    # Synthetic tokenizers: the tokenizer.json travels inside the fixture. Two modes keep the file small.
    synth = {}
    try:
        synthetic = synthetic_tokenizers(corpus)
    except Exception as e:
        print(f"synthetic tokenizers: FAILED: {e}")
        synthetic = {}
    for name, tok in synthetic.items():
        try:
            fx = fixture_for(name, tok, corpus, (MODES[0], MODES[3]))
            fx["tokenizer_json"] = tok.to_str()
            synth[name] = fx
            print(f"{name}: {len(fx['cases'])} cases, vocab {fx['vocab_size']}")
        except BaseException as e:  # a pyo3 PanicException (HF bug) derives from BaseException
            import traceback
            traceback.print_exc()
            print(f"{name}: FAILED: {e}")
    with open(f"{out_dir}/synthetic.json", "w", encoding="utf-8") as f:
        json.dump(synth, f, ensure_ascii=True, separators=(",", ":"))


def synthetic_tokenizers(corpus):
    """Small BPE tokenizers trained here, each wiring up components the three real ones do not use."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from tokenizers import trainers

    train_cats = {"prose", "code", "numbers", "whitespace", "crlf", "leading", "ascii", "mixed", "synthetic"}
    train = [t["text"] for t in corpus if t["category"] in train_cats] * 3

    def train_bpe(model, pre, vocab_size, specials, **kw):
        tok = Tokenizer(model)
        if pre is not None:
            tok.pre_tokenizer = pre
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False, **kw)
        tok.train_from_iterator(train, trainer)
        return tok

    out = {}

    def metaspace():
        tok = train_bpe(models.BPE(unk_token="<unk>"), pre_tokenizers.Metaspace(prepend_scheme="first"), 700,
                        ["<unk>", "<bos>", "<eos>"])
        tok.normalizer = normalizers.NFKC()
        tok.decoder = decoders.Metaspace(prepend_scheme="first")
        tok.add_special_tokens([AddedToken("<sep>", lstrip=True, rstrip=True, special=True, normalized=False)])
        tok.add_tokens([AddedToken("<note>", single_word=True, normalized=False),
                        AddedToken("yesterday", normalized=True)])
        bos, eos = tok.token_to_id("<bos>"), tok.token_to_id("<eos>")
        tok.post_processor = processors.TemplateProcessing(single="<bos> $A <eos>", pair="<bos> $A <eos> $B:1",
                                                           special_tokens=[("<bos>", bos), ("<eos>", eos)])
        return tok

    def subword():
        pre = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Digits(individual_digits=False),
                                       pre_tokenizers.Punctuation()])
        tok = train_bpe(models.BPE(unk_token="<unk>", fuse_unk=True, continuing_subword_prefix="##",
                                   end_of_word_suffix="</w>"), pre, 600, ["<unk>", "<bos>", "<eos>"],
                        continuing_subword_prefix="##", end_of_word_suffix="</w>")
        tok.normalizer = normalizers.Sequence([normalizers.NFD(), normalizers.StripAccents(), normalizers.Lowercase(),
                                               normalizers.Strip()])
        tok.decoder = decoders.BPEDecoder(suffix="</w>")
        tok.post_processor = processors.RobertaProcessing(("<eos>", tok.token_to_id("<eos>")),
                                                          ("<bos>", tok.token_to_id("<bos>")))
        return tok

    def bytelevel():
        tok = train_bpe(models.BPE(), pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True), 900,
                        ["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tok.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Replace(Regex("[!?]{2,}"), "!")])
        tok.decoder = decoders.ByteLevel()
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
        tok.add_special_tokens([AddedToken("<|user|>", lstrip=True, special=True, normalized=False)])
        tok.add_tokens([AddedToken("<|bot|>", rstrip=True, special=False, normalized=False)])
        return tok

    def split_fallback():
        pre = pre_tokenizers.Sequence([
            pre_tokenizers.Split(" ", behavior="merged_with_next"),
            pre_tokenizers.Split(Regex("[0-9]+"), behavior="isolated"),
            pre_tokenizers.Split(Regex("[.,;:!?]"), behavior="merged_with_previous"),
            pre_tokenizers.Split(Regex("x+"), behavior="removed"),
            pre_tokenizers.Split(Regex("[aeiou]"), behavior="contiguous", invert=True),
        ])
        base = train_bpe(models.BPE(unk_token="<unk>"), pre, 600, ["<unk>", "<eos>"])
        model = json.loads(base.to_str())["model"]
        vocab = dict(model["vocab"])
        for b in range(256):
            vocab.setdefault(f"<0x{b:02X}>", len(vocab))
        merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ", 1)) for m in model["merges"]]
        tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True))
        tok.pre_tokenizer = pre
        tok.add_special_tokens([AddedToken("<unk>", special=True, normalized=False),
                                AddedToken("<eos>", special=True, normalized=False)])
        tok.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Fuse(),
                                         decoders.Replace(Regex(" {2,}"), " "), decoders.Strip(content=" ", left=1, right=0)])
        tok.post_processor = processors.TemplateProcessing(single="$A <eos>", pair="$A <eos> $B:1 <eos>:1",
                                                           special_tokens=[("<eos>", tok.token_to_id("<eos>"))])
        return tok

    def misc():
        tok = train_bpe(models.BPE(unk_token="<unk>"), pre_tokenizers.BertPreTokenizer(), 500,
                        ["<unk>", "[CLS]", "[SEP]"])
        tok.normalizer = normalizers.Sequence([normalizers.NFKD(), normalizers.Lowercase()])
        tok.post_processor = processors.BertProcessing(("[SEP]", tok.token_to_id("[SEP]")),
                                                       ("[CLS]", tok.token_to_id("[CLS]")))
        return tok  # no decoder: HF joins tokens with spaces

    def whitespace_metaspace():
        pre = pre_tokenizers.Sequence([pre_tokenizers.Whitespace(),
                                       pre_tokenizers.Metaspace(prepend_scheme="always", split=False)])
        tok = train_bpe(models.BPE(unk_token="<unk>", ignore_merges=True), pre, 500, ["<unk>"])
        tok.decoder = decoders.Sequence([decoders.Metaspace(prepend_scheme="always", split=False), decoders.Fuse()])
        return tok

    for name, fn in (("syn_metaspace", metaspace), ("syn_subword", subword), ("syn_bytelevel", bytelevel),
                     ("syn_split_fallback", split_fallback), ("syn_misc", misc),
                     ("syn_whitespace_metaspace", whitespace_metaspace)):
        try:
            out[name] = fn()
        except Exception as e:  # keep the other fixtures when one configuration fails
            import traceback
            traceback.print_exc()
            print(f"{name}: FAILED: {e}")
    return out


def fixture_for(name, tok, corpus, modes):
    import tokenizers
    cases = []
    for item in corpus:
        text = item["text"]
        ids = {}
        for mode, add_special, parse in modes:
            tok.encode_special_tokens = not parse
            ids[mode] = tok.encode(text, add_special_tokens=add_special).ids
        tok.encode_special_tokens = False
        case = {"id": item["id"], "plain": ids["plain"]}
        for mode in ids:
            if mode != "plain" and ids[mode] != ids["plain"]:
                case[mode] = ids[mode]
        dec = tok.decode(ids["plain"], skip_special_tokens=False)
        case["roundtrip"] = dec == text
        if dec != text:
            case["decode_plain"] = dec
        dec_both = tok.decode(ids["both"], skip_special_tokens=False)
        dec_both_skip = tok.decode(ids["both"], skip_special_tokens=True)
        if dec_both != dec:
            case["decode_both"] = dec_both
        if dec_both_skip != dec_both:
            case["decode_both_skip"] = dec_both_skip
        cases.append(case)
    rng = random.Random(7)
    rand = []
    for seq in random_id_sequences(tok, rng, 60):
        rand.append({"ids": seq, "text": tok.decode(seq, skip_special_tokens=False),
                     "text_skip": tok.decode(seq, skip_special_tokens=True)})
    size = tok.get_vocab_size(with_added_tokens=True)
    sample = sorted(set(rng.randrange(size) for _ in range(300)) | {0, 1, 2, size - 1})
    id_to_token = [[i, tok.id_to_token(i)] for i in sample]
    return {"tokenizer": name, "tokenizers_version": tokenizers.__version__, "vocab_size": size,
            "cases": cases, "random_decode": rand, "id_to_token": id_to_token}


def main(argv):
    if len(argv) == 3 and argv[1] == "corpus":
        cmd_corpus(argv[2])
    elif len(argv) >= 5 and argv[1] == "fixtures":
        cmd_fixtures(argv[2], argv[3], argv[4:])
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
