#!/usr/bin/env python3
"""Writes transformers' answers for sdrepl's CLIP tokenizer tests into tests/fixtures/tokenizer/.

diffusers' StableDiffusionPipeline tokenizes with transformers' CLIPTokenizer
(the slow, Python one) and, when ftfy is installed, that cleans each prompt
with ftfy.fix_text. sdrepl's tokenizer must give the same ids, so this script
runs the real thing on several hundred prompts (hand-picked ones for every
path of the text clean-up, and seeded random ones) and saves:

  cases.json   encode: ids of tok(text) and of tok(text, padding="max_length",
                       max_length=77, truncation=True), with its attention mask
               clean:  whitespace_clean(ftfy.fix_text(text)).lower()
               fix_text, is_bad: ftfy alone, mojibake above all
               truncate, decode, sd2: truncation edges, decode, and the SD 2.x
                       tokenizer (pad token "!", which is an added token)
  calls.lua    the Lua binding's cases: tok(text, options) -> input_ids,
               attention_mask, for strings and lists

and copies the tokenizer folder it used (CLIP ViT-L/14's, as in SD 1.x) to
clip-vit-large-patch14/, so the tests need nothing outside the repository.

Run from the repository root, in the reference venv (setup_torch_env.sh):
    .venv-torch/bin/python scripts/reference/make_tokenizer_cases.py [VOCAB_DIR]
VOCAB_DIR defaults to ../shared/data/clip-vocab beside the repository.
The output is committed; tests never need Python.
"""
import json
import os
import random
import shutil
import sys
import tempfile

import ftfy
import ftfy.badness
import regex
import transformers
from transformers import CLIPTokenizer

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
OUT = os.path.join(ROOT, "tests", "fixtures", "tokenizer")
VOCAB_FILES = ["vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"]

# ---- prompts -----------------------------------------------------------------

SEED_NOTEBOOK = [
    "face of a human in  joy",
    "electronic art   of an angry human by Leonardo da Vinci",
    "a photograph of an astronaut riding a horse",
    "Labrador in the style of Vermeer",
]

HAND = [
    # empty and blank
    "", " ", "   ", "\t", "\n", " \n\t ", "\u3000", "\u00a0", "\u2003\u2009",
    # case, contractions, numbers, punctuation
    "A Photo Of A CAT", "MiXeD CaSe PrOmPt", "don't stop", "it's what we've got, i'm sure you'll see; he'd go",
    "IT'S DON'T WE'VE I'M YOU'LL HE'D THEY'RE", "'s 't 're 've 'm 'll 'd", "''s", "!'s", "can't've",
    "4k 8K 1080p 16:9 3.14159 2024-01-01", "12345678901234567890", "x1y2z3", "$100 50% #1 @home",
    "!!!", "...", "?!?!", "((masterpiece))", "[[best quality]]", "{a|b|c}", "a, b, c.", "a--b__c",
    "(detailed:1.2), (blurry:0.5)", "trending on artstation, 8k, octane render",
    "hello-world", "e-mail", "rock'n'roll", "10's", "'quoted'", '"double"', "`back`",
    "~tilde~ ^caret^ |pipe| \\back\\slash/", "<html> & </html>", "a<b>c", "<>", "a < b",
    # double spaces, tabs, newlines, other breaks
    "two  spaces", "tab\tseparated\tvalues", "line one\nline two", "windows\r\nline", "old mac\rline",
    "para\u2029graph", "line\u2028sep", "next\u0085line", "trailing spaces   ", "   leading",
    "a\u00a0nbsp", "thin\u2009space", "ideographic\u3000space", "zero\u200bwidth", "joiner\u200dhere",
    "vertical\x0btab", "form\x0cfeed", "\x1c\x1d\x1e\x1fseps",
    # control characters and terminal escapes
    "bell\x07char", "del\x7fchar", "\x1b[31mred\x1b[0m text", "\x1b[1;32;40mbold\x1b[m",
    "\x1b[\u0661mdigit", "bom\ufefffirst", "\ufeffbom", "obj\ufffcrepl", "annot\ufff9x\ufffby",
    "arabic\u206acontrol", "\x80\x81\x8d\x9f c1", "price \x80 5", "caf\x82",
    # HTML entities
    "fish &amp; chips", "&lt;tag&gt;", "caf&eacute;", "P&EACUTE;REZ", "BUNDESSTRA&SZLIG;E",
    "&ntilde; &Ntilde; &NTILDE; &nTILDE;", "&#65;&#66;&#67;", "&#x263A; smile", "&#X41;", "&#59;",
    "&#0;", "&#1;", "&#128;", "&#x80;", "&#xD800;", "&#1114112;", "&#99999999999999999999999;",
    "&#12ab;", "&#x12g;", "&#x;", "&#;", "&amp", "&unknown;", "&hellip;", "&nbsp;space",
    "&CounterClockwiseContourIntegral;", "&ClockwiseContourIntegral;", "&frac12; cup",
    "&amp;amp;", "&#38;amp;", "it&#x2019;s", "&quot;quoted&quot;", "&apos;", "&copy; 2020",
    "< &amp;", "&amp; <", "&Jscr;ohn &HilbertSpace;ancock", "&checkmark;",
    # curly quotes, ligatures, fullwidth, halfwidth
    "\u201ccurly\u201d \u2018single\u2019", "it\u2019s", "\u201equote\u201f", "\u2039angle\u203a",
    "modifier\u02bcapostrophe", "\ufb01ne \ufb02ower \ufb00 \ufb03 \ufb04 \ufb05 \ufb06",
    "\u0132sselmeer \u0133s", "\u01c4 \u01c5 \u01c6 \u01c7 \u01c8 \u01c9 \u01ca \u01cb \u01cc",
    "\u0149", "\uff2c\uff2f\uff35\uff24\u3000\uff2e\uff2f\uff29\uff33\uff25\uff33",
    "\uff11\uff12\uff13\uff01\uff1f", "\uff35\uff80\uff70\uff9d", "\uffe3\uffe4\uffe5\uffe6",
    "\uff61\uff62\uff63\uff64", "\uffa0\uffa1", "\uffe8\uffee",
    # accents and normalization
    "caf\u00e9", "cafe\u0301", "Cafe\u0301 CAFE\u0301", "na\u00efve r\u00e9sum\u00e9", "na\u0131ve",
    "\u00c5ngstr\u00f6m \u212b", "\u1e9b\u0323", "e\u0301\u0302\u0303", "a\u0328\u0301",
    "\u0958\u0959", "\u2126 \u212a \u212b", "\uf900\uf901", "\u0344\u0345", "a\u0345b",
    "\u00e0 la mode", "Stra\u00dfe", "\u1e9e", "\u0130stanbul", "I\u0307", "\u03a3\u039f\u03a3",
    "\u039f\u0394\u039f\u03a3", "\u03a3", "A\u03a3", "A\u03a3B", "A\u03a3.", "A\u00ad\u03a3",
    "\u2160\u2161\u2162 \u2170", "\u24b6\u24d0", "\u017ftra\u00dfe '\u017f", "'\u017f", "\u212a",
    "\u1100\u1161\u11a8", "\ud55c\uad6d\uc5b4", "\u1100\u1161 \u110b\u1173\u11af",
    # scripts
    "\u65e5\u672c\u8a9e\u306e\u6587\u7ae0", "\u4e2d\u6587\u63d0\u793a\u8bcd", "\u0440\u0443\u0441\u0441\u043a\u0438\u0439 \u0442\u0435\u043a\u0441\u0442",
    "\u0395\u039b\u039b\u0397\u039d\u0399\u039a\u0391", "\u0627\u0644\u0639\u0631\u0628\u064a\u0629", "\u05e2\u05d1\u05e8\u05d9\u05ea",
    "\u0939\u093f\u0928\u094d\u0926\u0940", "\u0e44\u0e17\u0e22", "\u10e5\u10d0\u10e0\u10d7\u10e3\u10da\u10d8",
    "\u0661\u0662\u0663 \u06f4\u06f5", "\u00bd \u00b2 \u2153", "\u2460\u2461", "\U0001d7d8\U0001d7d9",
    # emoji and symbols
    "\U0001f600 smile", "\U0001f431\U0001f436", "\U0001f469\u200d\U0001f4bb", "\U0001f44d\U0001f3fd",
    "\U0001f1fa\U0001f1f8", "\u2764\ufe0f", "\u2728 sparkles \u2728", "\U0001f3f4\U000e0067\U000e0062\U000e0077\U000e006c\U000e0073\U000e007f",
    "\u00a9\u00ae\u2122", "\u2190\u2192\u2191\u2193", "\u2211\u222b\u221a\u221e", "\u266a\u266b",
    "\u00ab guillemets \u00bb", "\u2014 em \u2013 en", "\u2026ellipsis", "\u00b7middle\u00b7",
    "\u20ac5 \u00a310 \u00a5100", "\u00b0C", "\u00b1 \u00d7 \u00f7",
    # special tokens inside text
    "<|startoftext|>", "<|endoftext|>", "a<|endoftext|>b", "a <|ENDOFTEXT|> b", "x<|startoftext|>",
    "<|endoftext|><|endoftext|>", "<|STARTOFTEXT|>", "<|startoftext", "&lt;|endoftext|&gt;",
    "<|endoftext|> &amp;", "\u201c<|endoftext|>\u201d", "<|\u017ftartoftext|>", "<<|endoftext|>>",
    # mojibake
    "caf\u00c3\u00a9", "\u00c3\u00a9", "s\u00c3\u00b3", "voil\u00c3 le travail", "\u00c3 la mode",
    "\u00e2\u0153\u201d No problems", "&macr;\\_(\u00e3\u0083\u0084)_/&macr;", "\u00e2\u20ac\u0153 like this \u00e2\u20ac\ufffd",
    "The Mona Lisa doesn\u00e2\u20ac\u2122t have eyebrows.", "\u00e2\u20ac\u0153quoted\u00e2\u20ac\u009d",
    "\u00c3\u00a0 \u00c3\u00a1", "Se\u00c3\u00b1or", "\u00c3\u2013sterreich", "\u00c3\u0178", "PE\u00c3\u2018A",
    "\u00d0\u00bf\u00d1\u20ac\u00d0\u00b8\u00d0\u00b2\u00d0\u00b5\u00d1\u201a", "\u00ce\u00b1\u00ce\u00b2\u00ce\u00b3",
    "\u00e6\u2014\u00a5\u00e6\u0153\u00ac", "\u00f0\u0178\u02dc\u20ac emoji", "\u00f0\u0178\u2018\u008d",
    "\u0432\u0402\u045a hello \u0432\u0402\u045c", "\u00e2\u20ac\u00a6", "\u00c2\u00a0nbsp", "\u00c2\u00bfQu\u00c3\u00a9?",
    "\u221a\u00a9", "\u201a\u00c4\u00f4", "\u00c3\u0192\u00c2\u00a9", "\u00c3\u0192\u00c6\u2019\u00c3\u2020\u00e2\u20ac\u2122",
    "caf\u00c3\u00a9 and na\u00c3\u00afve", "mixed caf\u00e9 and caf\u00c3\u00a9", "\u00c3\u00a9\u00e2\u20ac\u00a6",
    "l\u00c3\u00a2\u20ac\u2122", "\u00c3\u00b1\u00c3\u00a1", "\u00c2\u00a3100", "100\u00c2\u00b0C",
    "\u00e3\u0081\u201a\u00e3\u0081\u201e", "\u00ec\u2022\u02c6\u00eb\u2026\u2022", "\u00d9\u0192\u00d8\u00aa\u00d8\u00a7\u00d8\u00a8",
    "\u00ed\u00a0\u00bd\u00ed\u00b8\u20ac cesu", "\u00c0\u20ac null", "Ã", "Ã ", "a Ã b",
    "\u00c3\u00a0quele", "\u00c3 s lindas", "\u00c3\u0083\u00c2\u00a9", "\u00c3\u00a9\ufffd",
    "\u00e2\u20ac\ufffd", "\u00e2\u20ac?", "\u00c3?", "\u00c2\u00ab\u00c2\u00bb",
    "\u00e2\u0080\u0099", "\u00e2\u0080\u009c hi \u00e2\u0080\u009d", "\u00c2\u0080", "\u0080\u0099",
    "\u00d0\u0178\u00d1\u20ac\u00d0\u00b8\u00d0\u00b2\u00d0\u00b5\u00d1\u201a \u00d0\u00bc\u00d0\u00b8\u00d1\u20ac",
    "\u00cf\u0192\u00ce\u00bf\u00cf\u2020\u00ce\u00af\u00ce\u00b1", "\u00c5\u00bc\u00c3\u00b3\u00c5\u201a\u00c4\u2021",
    "\u00e2\u2022\u0090\u00e2\u2022\u0090", "\u2500\u2550\u2552", "\u2552\u00f2", "\u00b5\u00c3",
    "\u00c2\u00b7\u00c2", "\u0152x \u0153 \u0153uvre", "\u00d7\u00b2", "\u00e0\u00b2\u00e0",
    "\u00d8\u00a7\u00d9\u201e\u00d8\u00b9", "\u03b2\u20ac\u2122", "\u0393\u00b0\u0393", "\u0412\u0406\u0421",
    "\u0413\u045e\u0412\u0402\u0412\u045a hi", "\u2248\u00b0", "\u201a\u00e2\u00e0",
    # lines: unescape_html turns off for good after a line with '<'
    "&amp;\n< \n&amp;", "a &amp; b\nc &lt; d\ne &amp; f", "x &amp;\r\ny <",
    # long prompts: more than 77 tokens
    " ".join(["a beautiful painting of a castle on a hill at sunset"] * 10),
    ", ".join(f"tag{i}" for i in range(60)),
    "word " * 76, "word " * 75, "word " * 74, "a" * 300, "ab" * 150, "1" * 100,
    "supercalifragilisticexpialidocious " * 8, "!" * 100, "\U0001f600" * 40,
    "pneumonoultramicroscopicsilicovolcanoconiosis antidisestablishmentarianism",
]

# Words the random prompts are made of: plain, accented, other scripts, symbols.
WORDS = (
    "a an the of in on with by at from photo painting portrait landscape city night dog cat "
    "astronaut horse castle forest river mountain sunset dramatic lighting highly detailed "
    "masterpiece 4k 8k hdr octane render unreal engine artstation greg rutkowski Vermeer "
    "Leonardo da Vinci human joy angry electronic art face cinematic bokeh volumetric fog "
    "cyberpunk steampunk watercolor oil canvas sketch anime manga ghibli pixar neon vaporwave"
).split() + [
    "café", "naïve", "résumé", "Ångström", "straße", "São", "Zürich", "Ελλάδα", "Москва",
    "日本", "東京", "北京", "서울", "हिन्दी", "العربية", "עברית", "🙂", "🔥", "✨", "❤️", "👍🏽",
    "don't", "it's", "we've", "I'm", "you'll", "he'd", "they're", "&amp;", "&eacute;", "“quote”",
    "‘single’", "ﬁne", "ＦＵＬＬ", "½", "²", "³", "1080p", "16:9", "3.5", "100%", "#hashtag",
    "@user", "(emphasis:1.3)", "[bracket]", "{brace}", "--ar", "::", "...", "!!", "?!", "—", "–",
    "cafÃ©", "Ã©", "â€œ", "â€™", "Ã ", "Â", "Ã", "Â£", "Ã¼", "Ð¿Ñ€", "Ã¶", "Ã±",
]
SEPARATORS = [" ", " ", " ", " ", ", ", "  ", "\t", "\n", " \u00a0", "\u3000", ",", ". ", "; "]


def random_prompts(rng, count):
    out = []
    for _ in range(count):
        n = rng.choice([1, 2, 3, 5, 8, 13, 21, 40])
        parts = []
        for i in range(n):
            w = rng.choice(WORDS)
            r = rng.random()
            if r < 0.15:
                w = w.upper()
            elif r < 0.3:
                w = w.capitalize()
            parts.append(w)
            if i + 1 < n:
                parts.append(rng.choice(SEPARATORS))
        out.append("".join(parts))
    return out


def random_unicode(rng, count):
    """Strings of code points drawn from blocks every path of the text clean-up reads."""
    blocks = [(0x20, 0x7E), (0x01, 0x20), (0x80, 0xFF), (0x100, 0x17F), (0x300, 0x36F),
              (0x370, 0x3FF), (0x400, 0x45F), (0x1100, 0x11FF), (0x2000, 0x206F), (0x2100, 0x214F),
              (0x2190, 0x21FF), (0x2500, 0x257F), (0x3000, 0x303F), (0x3040, 0x30FF),
              (0x4E00, 0x4E80), (0xAC00, 0xAC40), (0xFB00, 0xFB4F), (0xFE00, 0xFE0F),
              (0xFF00, 0xFFEF), (0x1F300, 0x1F64F), (0x1D400, 0x1D4FF), (0xE0000, 0xE007F)]
    out = []
    for _ in range(count):
        n = rng.randint(1, 24)
        s = []
        for _ in range(n):
            lo, hi = rng.choice(blocks)
            c = rng.randint(lo, hi)
            if 0xD800 <= c <= 0xDFFF:
                c = 0x41
            s.append(chr(c))
        out.append("".join(s))
    return out


# ---- mojibake for ftfy ---------------------------------------------------------

PHRASES = ["café", "naïve résumé", "Señor Muñoz", "Ünïcödé", "à la mode", "smörgåsbord",
           "“quoted” — dash… ‘single’", "€100 · £5 ±1 °C", "日本語", "Привет мир", "Ελληνικά",
           "Zażółć gęślą jaźń", "Türkçe ğış", "😀 emoji 👍", "naïve café, à bientôt", "Ærøskøbing",
           "ça va? oui! ¿qué tal?", "x²+y³", "Škoda Žiguli", "über straße", "ثلاثة", "עברית"]
ENCODINGS = ["latin-1", "windows-1252", "windows-1251", "windows-1250", "windows-1253",
             "windows-1254", "iso-8859-2", "macroman", "cp437"]


def mojibake(rng):
    out = []
    for p in PHRASES:
        for enc in ENCODINGS:
            try:
                m = p.encode("utf-8").decode(enc)
            except UnicodeDecodeError:
                m = p.encode("utf-8").decode(enc, errors="replace")
            out.append(m)
    # twice, with spaces for \xa0, with lost bytes, embedded in clean text
    for p in PHRASES[:10]:
        m = p.encode("utf-8").decode("windows-1252", errors="replace")
        out.append(m.encode("utf-8").decode("windows-1252", errors="replace"))
        out.append(m.replace("\xa0", " "))
        out.append("clean text, then " + m + " and more")
        out.append(p + " / " + m)
    return [m for m in out if m]


# ---- ftfy's is_bad, probed with the characters its classes hold -------------------

def badness_probes(rng, count):
    cats = ftfy.badness.MOJIBAKE_CATEGORIES
    pool = set()
    for body in cats.values():
        for m in regex.finditer(r"(.)-(.)|(.)", body, regex.DOTALL):
            if m.group(3):
                pool.add(m.group(3))
            else:
                pool.update(chr(c) for c in range(ord(m.group(1)), ord(m.group(2)) + 1))
    pool.update("ÂÃÎÐ€Šš¢£Ÿž\xa0\xad®©°·»–—´×²³ØÙµà¹¼½¾√±∂†≠™≤≥¥ø≈‚ÄìîïòôúùûπâóäêвЂВГРСўβΆΒΓΞΟŒœ")
    pool.update("aZ .,?!_1 \t\n")
    pool = sorted(pool)
    out = []
    for _ in range(count):
        n = rng.randint(1, 6)
        out.append("".join(rng.choice(pool) for _ in range(n)))
    return out


# ---- the reference --------------------------------------------------------------

def clean_of(tok, text):
    from transformers.models.clip.tokenization_clip import whitespace_clean
    return whitespace_clean(tok.fix_text(text)).lower()


def encode_cases(tok, texts):
    cases = []
    for t in texts:
        ids = tok(t).input_ids
        padded = tok(t, padding="max_length", max_length=77, truncation=True)
        case = {"text": t, "ids": ids}
        # Padded ids are the truncated ids plus pad tokens: stored only where truncation cut.
        if len(ids) > 77:
            case["ids77"] = padded.input_ids
        else:
            assert padded.input_ids == ids + [tok.pad_token_id] * (77 - len(ids))
        assert padded.attention_mask == [1] * min(len(ids), 77) + [0] * (77 - min(len(ids), 77))
        cases.append(case)
    return cases


def sd2_folder(vocab_dir, tmp):
    """The SD 2.x tokenizer folder: the same vocabulary, pad token "!"."""
    d = os.path.join(tmp, "sd2")
    os.makedirs(d)
    for f in ["vocab.json", "merges.txt"]:
        shutil.copy(os.path.join(vocab_dir, f), d)
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump(SD2_CONFIG, f)
    with open(os.path.join(d, "special_tokens_map.json"), "w") as f:
        json.dump(SD2_MAP, f)
    return d


# stabilityai/stable-diffusion-2-1's tokenizer/ files, as on the hub.
SD2_TOKEN = {"lstrip": False, "normalized": True, "rstrip": False, "single_word": False}
SD2_CONFIG = {
    "add_prefix_space": False,
    "bos_token": dict(__type="AddedToken", content="<|startoftext|>", **SD2_TOKEN),
    "do_lower_case": True,
    "eos_token": dict(__type="AddedToken", content="<|endoftext|>", **SD2_TOKEN),
    "errors": "replace",
    "model_max_length": 77,
    "name_or_path": "stabilityai/stable-diffusion-2",
    "pad_token": "<|endoftext|>",
    "special_tokens_map_file": "./special_tokens_map.json",
    "tokenizer_class": "CLIPTokenizer",
    "unk_token": dict(__type="AddedToken", content="<|endoftext|>", **SD2_TOKEN),
}
SD2_MAP = {
    "bos_token": dict(content="<|startoftext|>", **SD2_TOKEN),
    "eos_token": dict(content="<|endoftext|>", **SD2_TOKEN),
    "pad_token": "!",
    "unk_token": dict(content="<|endoftext|>", **SD2_TOKEN),
}

LUA_CALLS = [
    ("a photo of a cat", {}),
    ("a photo of a cat", {"padding": "max_length", "max_length": 77, "truncation": True}),
    ("a photo of a cat", {"padding": "max_length"}),
    ("a photo of a cat", {"padding": "max_length", "max_length": 10}),
    ("a photo of a cat", {"max_length": 4}),
    ("a photo of a cat", {"max_length": 4, "truncation": False}),
    ("a photo of a cat", {"max_length": 4, "truncation": True}),
    ("a photo of a cat", {"max_length": 4, "truncation": "longest_first"}),
    ("a photo of a cat", {"truncation": True}),
    ("a photo of a cat", {"padding": True}),
    ("a photo of a cat", {"padding": "longest"}),
    ("a photo of a cat", {"padding": "do_not_pad"}),
    ("a photo of a cat", {"add_special_tokens": False}),
    ("a photo of a cat", {"add_special_tokens": False, "max_length": 3, "truncation": True}),
    (" ".join(["word"] * 100), {"padding": "max_length", "max_length": 77, "truncation": True}),
    (" ".join(["word"] * 100), {"truncation": True}),
    (" ".join(["word"] * 100), {"padding": "max_length"}),
    ("", {"padding": "max_length", "max_length": 8}),
    (["a cat", "a very fluffy white cat"], {}),
    (["a cat", "a very fluffy white cat"], {"padding": True}),
    (["a cat", "a very fluffy white cat"], {"padding": "longest", "max_length": 3, "truncation": True}),
    (["a cat", "a very fluffy white cat"], {"padding": "max_length", "max_length": 77, "truncation": True}),
    (["face of a human in  joy", ""], {"padding": "max_length", "max_length": 12, "truncation": True}),
    (["only one"], {"padding": True}),
    # C strings end at NUL; the binding drops NUL bytes, as ftfy's remove_control_chars would.
    ("nul\x00byte", {}),
]


def lua_string(s):
    out = ['"']
    for b in s.encode("utf-8"):
        if b in (ord('"'), ord("\\")):
            out.append("\\" + chr(b))
        elif 0x20 <= b < 0x7F:
            out.append(chr(b))
        else:
            out.append(f"\\{b}")
    out.append('"')
    return "".join(out)


def lua_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return lua_string(v)
    if isinstance(v, list):
        return "{" + ", ".join(lua_value(x) for x in v) + "}"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {lua_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(v)


def main():
    vocab_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "..", "shared", "data", "clip-vocab")
    os.makedirs(OUT, exist_ok=True)
    copy = os.path.join(OUT, "clip-vit-large-patch14")
    os.makedirs(copy, exist_ok=True)
    for f in VOCAB_FILES:
        shutil.copy(os.path.join(vocab_dir, f), copy)
    tok = CLIPTokenizer.from_pretrained(copy)
    assert tok.fix_text is not None, "ftfy is not installed: the reference would not clean text"

    rng = random.Random(20240601)
    prompts = SEED_NOTEBOOK + HAND + random_prompts(rng, 250) + random_unicode(rng, 150)
    moji = mojibake(rng)
    texts = prompts + moji

    cases = {
        "generated_by": "scripts/reference/make_tokenizer_cases.py",
        "versions": {"transformers": transformers.__version__, "ftfy": ftfy.__version__,
                     "regex": regex.__version__, "python": sys.version.split()[0]},
        "tokenizer": "clip-vit-large-patch14",
        "pad_token_id": tok.pad_token_id,
        "encode": encode_cases(tok, texts),
        "clean": [{"text": t, "clean": clean_of(tok, t)} for t in texts],
        "fix_text": [{"text": t, "fixed": ftfy.fix_text(t)} for t in moji + HAND],
        "is_bad": [{"text": t, "bad": ftfy.badness.is_bad(t)} for t in badness_probes(rng, 600)],
    }
    assert not any("\x00" in t for t in texts), "C strings cannot hold NUL"

    trunc = []
    for t in ["a photo of a cat", "", "one", "word " * 80]:
        for m in [1, 2, 3, 4, 5, 7, 77]:
            trunc.append({"text": t, "max_length": m,
                          "ids": tok(t, max_length=m, truncation=True).input_ids})
    cases["truncate"] = trunc

    dec = []
    for t in ["a dog. a cat, a bird! what? it's", "don't ' quote ' we've you're i'm",
              "café 日本 😀", "hello   world", "", "<|endoftext|>", "x</w>y"] + prompts[:40]:
        ids = tok(t).input_ids
        for skip in (False, True):
            dec.append({"ids": ids, "skip_special_tokens": skip,
                        "text": tok.decode(ids, skip_special_tokens=skip)})
    # ids that cut a character's bytes: errors="replace"
    for ids in [[128, 129], [49406, 128], [256, 320, 257], [49407, 49407, 0, 1]]:
        dec.append({"ids": ids, "skip_special_tokens": False, "text": tok.decode(ids)})
    cases["decode"] = dec

    with tempfile.TemporaryDirectory() as tmp:
        tok2 = CLIPTokenizer.from_pretrained(sd2_folder(vocab_dir, tmp))
        sd2 = []
        for t in ["hello!world", "wow!!", "!", "a photo of a cat!", "! ! !", "stop!!! now", "a cat"]:
            sd2.append({"text": t, "ids": tok2(t).input_ids,
                        "ids77": tok2(t, padding="max_length", max_length=77, truncation=True).input_ids})
        cases["sd2"] = {"config": SD2_CONFIG, "special_tokens_map": SD2_MAP,
                        "pad_token_id": tok2.pad_token_id, "cases": sd2}

    with open(os.path.join(OUT, "cases.json"), "w", encoding="utf-8") as f:
        json.dump(cases, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")

    # The Lua binding's calls.
    lines = ["-- tests/fixtures/tokenizer/calls.lua: GENERATED by scripts/reference/make_tokenizer_cases.py",
             "-- tok(text, options) -> input_ids, attention_mask, as transformers' CLIPTokenizer answers.",
             "return {"]
    for text, opts in LUA_CALLS:
        enc = tok(text, **opts)
        lines.append(f"  {{text = {lua_value(text)}, options = {lua_value(opts)},")
        lines.append(f"   input_ids = {lua_value(enc.input_ids)},")
        lines.append(f"   attention_mask = {lua_value(enc.attention_mask)}}},")
    lines.append("}")
    with open(os.path.join(OUT, "calls.lua"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")

    n = sum(len(cases[k]) for k in ["encode", "fix_text", "is_bad", "truncate", "decode"])
    print(f"wrote {len(cases['encode'])} encode cases ({n} in all) to {os.path.relpath(OUT, ROOT)}")


if __name__ == "__main__":
    main()
