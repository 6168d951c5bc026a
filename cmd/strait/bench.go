package main

import "errors"

// STUB: replaced by the bench command's implementation.
func runBench(args []string) error { return errors.New("bench: not implemented yet") }
