// Reads a deitkd label store with DuckDB, independently of the Go code:
//   node read_parquet.mjs STORE_DIR
// prints {"rows": [...], "metadata": {key: value}} as JSON, rows ordered by
// (image_index, view), for the interop test in store/interop_test.go.
import { DuckDBInstance } from '@duckdb/node-api';

const dir = process.argv[2];
if (!dir) {
  console.error('usage: node read_parquet.mjs STORE_DIR');
  process.exit(2);
}
const glob = `${dir.replace(/'/g, "''")}/*.parquet`;
const instance = await DuckDBInstance.create(':memory:');
const con = await instance.connect();
const rows = await con.runAndReadAll(
  `SELECT * FROM read_parquet('${glob}') ORDER BY image_index, view`);
const meta = await con.runAndReadAll(
  `SELECT DISTINCT decode(key) AS key, decode(value) AS value FROM parquet_kv_metadata('${glob}') WHERE decode(key) LIKE 'deitkd.%'`);
const metadata = {};
for (const r of meta.getRowObjectsJson()) metadata[r.key] = r.value;
const types = {};
const desc = await con.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet('${glob}')`);
for (const r of desc.getRowObjectsJson()) types[r.column_name] = r.column_type;
process.stdout.write(JSON.stringify({ rows: rows.getRowObjectsJson(), metadata, types }));
