// Command labels inspects, verifies, merges and exports deitkd label stores.
//
//	labels inspect PATH                        schema, metadata, counts, teacher accuracy
//	labels verify PATH [--complete]            checksums, counts, order, coverage of the store's --limit (--complete: the dataset); exit 1 on any problem
//	labels merge DIR                           combine the manifests of a --shard i/n store
//	labels export PATH --format csv|jsonl [-n ROWS]
//	labels show PATH --data SRC --rows A-B [--out FILE.png] [--tensors DIR]
//	                                           the rows' views as the teacher saw them: a contact sheet, the teacher's inputs as .npy
//
// PATH is a store folder or its manifest.json. Flags and printing only; the
// work is done by package store (and show for labels show). It imports store, schema and show only.
package main
