// Command labels inspects, verifies, merges and exports deitkd label stores.
//
//	labels inspect PATH                        schema, metadata, counts, teacher accuracy
//	labels verify PATH [--complete]            checksums, counts, order, coverage of the store's --limit (--complete: the dataset); exit 1 on any problem
//	labels merge DIR                           combine the manifests of a --shard i/n store
//	labels export PATH --format csv|jsonl [-n ROWS]
//
// PATH is a store folder or its manifest.json. Flags and printing only; the
// work is done by package store. It imports store and schema only.
package main
