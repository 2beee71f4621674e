package store

import "errors"

// Sentinel errors. Every error from this package that concerns a file names
// that file and wraps one of these.
var (
	ErrManifest     = errors.New("store: bad manifest")
	ErrMissingShard = errors.New("store: missing shard")
	ErrChecksum     = errors.New("store: checksum mismatch")
	ErrCorrupt      = errors.New("store: unreadable shard")
	ErrContent      = errors.New("store: bad content")
	ErrRow          = errors.New("store: bad row")
	ErrOrder        = errors.New("store: rows out of order")
	ErrNotMyShard   = errors.New("store: image belongs to another writer")
	ErrClosed       = errors.New("store: writer closed")
	ErrNotFound     = errors.New("store: no such row")
	ErrIncomplete   = errors.New("store: incomplete")
	ErrLocked       = errors.New("store: locked by another writer")
)
