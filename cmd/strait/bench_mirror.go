package main

import "errors"

// STUB: replaced by the mirror benchmark's implementation.
func benchMirror(args []string) error { return errors.New("bench mirror: not implemented yet") }
