package main

import "errors"

// STUB: replaced by the status command's implementation.
func runStatus(args []string) error { return errors.New("status: not implemented yet") }
