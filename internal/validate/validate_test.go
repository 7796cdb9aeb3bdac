package validate

import (
	"errors"
	"math"
	"strings"
	"testing"
)

var errTest = errors.New("invalid test config")

func TestProblemsCollectsEveryProblem(t *testing.T) {
	p := New(errTest, "")
	InRange(p, "Streams", 0, 1, 8)
	InRange(p, "Rate", math.NaN(), 0, 1)
	InRange(p, "Ok", 3, 1, 8)
	OneOf(p, "Mode", "x", "local", "coordinator")
	p.Addf("ID", "must not be empty")
	err := p.Err()
	if !errors.Is(err, errTest) {
		t.Fatalf("error %v does not wrap the sentinel", err)
	}
	for _, want := range []string{
		"invalid test config: Streams = 0, must be in 1..8",
		"Rate = NaN, must be in 0..1",
		"Mode = x, must be one of local, coordinator",
		"ID must not be empty",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "Ok") {
		t.Errorf("a field in range is reported: %v", err)
	}
	if New(errTest, "").Err() != nil {
		t.Error("no problems give an error")
	}
}
