package main

import "errors"

// STUB: replaced by the plan command's implementation.
func runPlan(args []string) error { return errors.New("plan: not implemented yet") }
