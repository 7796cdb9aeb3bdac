// Package bytesize writes byte counts for people: the one form whorl's
// messages and reports use for memory sizes (the admission refusal, the
// memory estimate's parts).
package bytesize
