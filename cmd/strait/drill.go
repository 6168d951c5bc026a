package main

import "errors"

// STUB: replaced by the drill command's implementation.
func runDrill(args []string) error { return errors.New("drill: not implemented yet") }
