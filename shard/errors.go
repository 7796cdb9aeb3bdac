package shard

import "fmt"

// errorf wraps the sentinel kind with a formatted message.
func errorf(kind error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", kind, fmt.Sprintf(format, args...))
}
