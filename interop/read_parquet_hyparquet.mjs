// Reads a deitkd label store with hyparquet (pure JavaScript, no Arrow or
// DuckDB code), independently of the Go code and of read_parquet.mjs:
//   node read_parquet_hyparquet.mjs STORE_DIR
// prints {"rows": [...], "metadata": {key: value}, "types": {column: type}} as
// JSON, rows ordered by (image_index, view), for the interop test in
// store/interop_test.go. hyparquet itself only decompresses Snappy; our shards
// are ZSTD, which hyparquet-compressors supplies.
// FLOAT16 columns: hyparquet decodes the FLOAT16 logical type to JavaScript
// numbers itself (its convert.js, parseFloat16); this script does no float16
// decoding of its own and fails if it sees anything but numbers there.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parquetMetadata, parquetReadObjects, parquetSchema } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';

const dir = process.argv[2];
if (!dir) {
  console.error('usage: node read_parquet_hyparquet.mjs STORE_DIR');
  process.exit(2);
}
const files = readdirSync(dir).filter((f) => f.endsWith('.parquet')).sort();
if (files.length === 0) {
  console.error(`no .parquet files in ${dir}`);
  process.exit(1);
}

// Column type as hyparquet sees it: physical type, logical type, repetition,
// and for lists the element's, e.g. "LIST<FIXED_LEN_BYTE_ARRAY/FLOAT16>".
const typeOf = (node) => {
  const e = node.element;
  if (node.children.length === 0) {
    const logical = e.logical_type?.type ?? e.converted_type;
    return logical ? `${e.type}/${logical}` : e.type;
  }
  const kind = e.logical_type?.type ?? e.converted_type ?? 'GROUP';
  return `${kind}<${node.children.map(typeOf).join(',')}>`;
};

const plain = (v) => {
  // A 64-bit integer beyond 2^53 (an erase_seed) as its exact decimal string, as DuckDB writes one.
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  // No column of ours is bytes: a Uint8Array here would be undecoded values
  // (e.g. FLOAT16 as its two raw bytes), so refuse it rather than pass it on.
  if (v instanceof Uint8Array) throw new Error('hyparquet returned raw bytes');
  if (Array.isArray(v) || ArrayBuffer.isView(v)) return Array.from(v, plain);
  return v;
};

const rows = [];
const metadata = {};
const types = {};
for (const f of files) {
  const buf = readFileSync(join(dir, f));
  const file = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
  const md = parquetMetadata(file);
  for (const { key, value } of md.key_value_metadata ?? []) {
    if (key.startsWith('deitkd.')) metadata[key] = value;
  }
  for (const child of parquetSchema(md).children) types[child.element.name] = typeOf(child);
  const objs = await parquetReadObjects({ file, metadata: md, compressors });
  for (const o of objs) {
    const out = {};
    for (const [k, v] of Object.entries(o)) out[k] = plain(v);
    rows.push(out);
  }
}
// Float16 columns must have come back as numbers (not raw 2-byte values).
for (const [col, t] of Object.entries(types)) {
  if (!t.includes('FLOAT16')) continue;
  for (const r of rows) {
    const v = r[col];
    const vals = Array.isArray(v) ? v : [v];
    if (vals.some((x) => x !== null && typeof x !== 'number')) {
      console.error(`column ${col} (${t}): hyparquet returned ${typeof vals[0]}, not numbers`);
      process.exit(1);
    }
  }
}
rows.sort((a, b) => a.image_index - b.image_index || a.view - b.view);
process.stdout.write(JSON.stringify({ rows, metadata, types }));
