package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"

	"strait/drill"
)

// runScenarios runs the named drill scenarios (all implemented ones when
// names is ""), prints a table, writes the JSON report, and fails unless
// every scenario passed.
func runScenarios(names, jsonOut string) error {
	var list []string
	if names == "" {
		for _, n := range drill.Scenarios {
			if drill.Implemented(n) {
				list = append(list, n)
			}
		}
	} else {
		for _, n := range strings.Split(names, ",") {
			n = strings.TrimSpace(n)
			if !slices.Contains(drill.Scenarios, n) {
				return fmt.Errorf("%w: unknown scenario %q (scenarios: %s)", errUsage, n, strings.Join(drill.Scenarios, ", "))
			}
			list = append(list, n)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	dir, err := os.MkdirTemp("", "strait-drill-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var report struct {
		Scenarios []*drill.Result `json:"scenarios"`
	}
	allPassed := true
	for _, n := range list {
		fmt.Printf("running %s ...\n", n)
		res := drill.RunScenario(ctx, n, dir, nil)
		report.Scenarios = append(report.Scenarios, res)
		allPassed = allPassed && res.Passed
		if res.Error != "" {
			fmt.Printf("  %s: %s\n", n, res.Error)
		}
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tRESULT\tLOST\tDUPLICATED\tREORDERED\tREDELIVERED\tRPO RECORDS\tRPO MS\tRTO MS\tDURATION MS")
	for _, r := range report.Scenarios {
		verdict := "pass"
		if !r.Passed {
			verdict = "FAIL"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", r.Scenario, verdict, r.Lost, r.Duplicated, r.Reordered, r.Redelivered, r.RPORecords, r.RPOMS, r.RTOMS, r.DurationMS)
	}
	_ = tw.Flush()
	if jsonOut != "" {
		b, err := json.MarshalIndent(report, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(jsonOut, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("writing the report: %w", err)
		}
	}
	if !allPassed {
		fmt.Println("DRILL FAILED")
		return cmdExit(exitError)
	}
	fmt.Println("drill passed")
	return nil
}
