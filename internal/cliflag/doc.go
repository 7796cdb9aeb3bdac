// Package cliflag holds the pflag values of whorl's command line that check
// what they are given: IntRange, FloatRange, DurationRange and ByteSize
// reject a value outside their range, Enum one that is not among its
// choices, each with a message naming the accepted values (pflag adds the
// flag's name), so a bad value from the command line, the environment or a
// config file is refused the same way. Only cmd/whorl, the one package
// that reads flags, links it.
package cliflag
