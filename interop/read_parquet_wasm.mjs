// Reads a deitkd label store with parquet-wasm (arrow-rs's Parquet reader,
// compiled to WebAssembly) and apache-arrow, independently of the Go code and
// of the DuckDB and hyparquet readers:
//   node read_parquet_wasm.mjs STORE_DIR
// prints {"rows": [...], "metadata": {key: value}, "types": {column: type}} as
// JSON, rows ordered by (image_index, view), for store/interop_test.go.
// parquet-wasm hands back an Arrow IPC stream; apache-arrow's Vector iterator
// turns float16 into numbers (toArray() would give the raw bits).
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { readParquet } from 'parquet-wasm';
import { tableFromIPC } from 'apache-arrow';

const dir = process.argv[2];
if (!dir) {
  console.error('usage: node read_parquet_wasm.mjs STORE_DIR');
  process.exit(2);
}
const files = readdirSync(dir).filter((f) => f.endsWith('.parquet')).sort();
if (files.length === 0) {
  console.error(`no .parquet files in ${dir}`);
  process.exit(1);
}
const plain = (v) => {
  // A 64-bit integer beyond 2^53 (an erase_seed) as its exact decimal string, as DuckDB writes one.
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  // A struct (a randaugment op) as an object of its fields, not a list of entries.
  if (v && v.constructor?.name === 'StructRow') return Object.fromEntries(Array.from(v, ([k, x]) => [k, plain(x)]));
  if (v && typeof v.toArray === 'function') return Array.from(v, plain);
  return v;
};
const rows = [];
const metadata = {};
const types = {};
for (const f of files) {
  const table = tableFromIPC(readParquet(readFileSync(join(dir, f))).intoIPCStream());
  for (const [k, v] of table.schema.metadata) if (k.startsWith('deitkd.')) metadata[k] = v;
  for (const field of table.schema.fields) types[field.name] = String(field.type);
  for (const row of table) {
    const out = {};
    for (const field of table.schema.fields) out[field.name] = plain(row[field.name]);
    rows.push(out);
  }
}
rows.sort((a, b) => a.image_index - b.image_index || a.view - b.view);
process.stdout.write(JSON.stringify({ rows, metadata, types }));
