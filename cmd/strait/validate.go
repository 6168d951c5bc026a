package main

import "errors"

// STUB: replaced by the validate command's implementation.
func runValidate(args []string) error { return errors.New("validate: not implemented yet") }
