//go:build !race

package model

// raceDetector reports whether the tests run with -race.
const raceDetector = false
