// Reads the Arrow IPC shards of a deitkd label store with apache-arrow,
// independently of the Go code:
//   node read_arrow.mjs FILE.arrow...
// prints {"rows": [...], "metadata": {key: value}, "types": {column: type}}.
import { readFileSync } from 'node:fs';
import { tableFromIPC } from 'apache-arrow';

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: node read_arrow.mjs FILE.arrow...');
  process.exit(2);
}
const plain = (v) => {
  // A 64-bit integer beyond 2^53 (an erase_seed) as its exact decimal string, as DuckDB writes one.
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  // A struct (a randaugment op) as an object of its fields, not a list of entries.
  if (v && v.constructor?.name === 'StructRow') return Object.fromEntries(Array.from(v, ([k, x]) => [k, plain(x)]));
  // A Vector's iterator converts float16 to numbers; toArray() would give the raw bits.
  if (v && typeof v.toArray === 'function') return Array.from(v, plain);
  return v;
};
const rows = [];
let metadata = {};
const types = {};
for (const f of files) {
  const table = tableFromIPC(readFileSync(f));
  metadata = Object.fromEntries(table.schema.metadata);
  for (const field of table.schema.fields) types[field.name] = String(field.type);
  for (const row of table) {
    const out = {};
    for (const field of table.schema.fields) out[field.name] = plain(row[field.name]);
    rows.push(out);
  }
}
process.stdout.write(JSON.stringify({ rows, metadata, types }));
