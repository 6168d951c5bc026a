package checkpoint

// Test helpers shared with the external test package (engine_test.go),
// which drives the real mirror engine.
var (
	FillSource  = fillSource
	ConsumeAll  = consumeAll
	NewKfake    = newKfake
	NewBrokerd  = newBrokerd
	CreateTopic = createTopic
	WaitFor     = waitFor
	SameRecord  = sameRecord
	Produce     = produce
	Rec         = rec
)
