// Package utf8esc writes a byte string as valid UTF-8 the way Python's
// bytes.decode("utf-8", "backslashreplace") does.
package utf8esc

import (
	"strings"
	"unicode/utf8"
)

// Escape returns s when it is valid UTF-8; otherwise s with each byte that is not part of
// valid UTF-8 written as `\xHH` (lower-case hex) and the valid parts kept, as Python's
// bytes.decode("utf-8", "backslashreplace") writes it.
func Escape(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	const hexd = "0123456789abcdef"
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteString(`\x`)
			b.WriteByte(hexd[s[i]>>4])
			b.WriteByte(hexd[s[i]&15])
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}
