package drill

import (
	"context"
	"testing"
)

// TestScenarioPlannedFailover runs the planned failover with a group that
// is active during the cutover: nothing lost, nothing read twice.
func TestScenarioPlannedFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a scenario")
	}
	res := RunScenario(context.Background(), "planned-failover", t.TempDir(), nil)
	if !res.Passed || res.Lost != 0 || res.Duplicated != 0 || res.Reordered != 0 {
		t.Fatalf("%+v", res)
	}
}

// TestScenariosAllImplemented: `strait drill` runs every scenario it names.
func TestScenariosAllImplemented(t *testing.T) {
	for _, n := range Scenarios {
		if !Implemented(n) {
			t.Errorf("scenario %s is named but not implemented", n)
		}
	}
	if len(scenarioFuncs) != len(Scenarios) {
		t.Errorf("%d scenarios implemented, %d named", len(scenarioFuncs), len(Scenarios))
	}
}

func TestScenarioUnknown(t *testing.T) {
	res := RunScenario(context.Background(), "nope", t.TempDir(), nil)
	if res.Passed || res.Error == "" {
		t.Fatalf("%+v", res)
	}
}

// TestScenarioFailback: the tail copied once, west's writes brought back
// to east, nothing lost, doubled or echoed on either side.
func TestScenarioFailback(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a scenario")
	}
	res := RunScenario(context.Background(), "failback", t.TempDir(), nil)
	if !res.Passed || res.RPORecords == 0 {
		t.Fatalf("%+v", res)
	}
}
