package main

import "errors"

// STUB: replaced by the broker command's implementation.
func runBroker(args []string) error { return errors.New("broker: not implemented yet") }
