package main

import "errors"

// STUB: replaced by the offsets command's implementation.
func runOffsets(args []string) error { return errors.New("offsets: not implemented yet") }
