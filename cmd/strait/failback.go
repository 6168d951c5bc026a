package main

func runFailback(args []string) error { return nil }
