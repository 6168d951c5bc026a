package main

import "errors"

// STUB: replaced by the mirror command's implementation.
func runMirror(args []string) error { return errors.New("mirror: not implemented yet") }
