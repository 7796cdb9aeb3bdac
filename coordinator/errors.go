package coordinator

import "errors"

// ErrConfig: an invalid Config or local-cluster option (the message names
// the field and the bound). The errors a coordinator answers with over
// gRPC are declared once, in package client.
var ErrConfig = errors.New("invalid coordinator configuration")
