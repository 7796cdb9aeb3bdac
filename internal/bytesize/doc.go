// Package bytesize is the one form of byte counts: Human writes them for
// people, the form whorl's messages and reports use for memory sizes (the
// admission refusal, the memory estimate's parts); Parse and Format are the
// exact form of size flags (64KiB, 16MiB, 1GiB, 16MB).
package bytesize
