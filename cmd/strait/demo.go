package main

import "errors"

// STUB: replaced by the demo command's implementation.
func runDemo(args []string) error { return errors.New("demo: not implemented yet") }
