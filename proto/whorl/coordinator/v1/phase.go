package coordinatorv1

// phaseLabels are the phases as people read them (logs, `whorl status`,
// `whorl run`'s progress): the one vocabulary outside the coordinator's raft
// state, which keeps its own stable strings and maps them to Phase in one
// table (coordinator/assign.go).
var phaseLabels = map[Phase]string{
	Phase_PHASE_UNSPECIFIED: "unspecified",
	Phase_PHASE_PENDING:     "pending",
	Phase_PHASE_PRETRAINING: "pretraining",
	Phase_PHASE_BASELINE:    "baseline",
	Phase_PHASE_FINETUNING:  "fine-tuning",
	Phase_PHASE_EVALUATING:  "evaluating",
	Phase_PHASE_DONE:        "done",
	Phase_PHASE_FAILED:      "failed",
}

// Label is the phase's name for people ("fine-tuning"); String is the
// protobuf enum name ("PHASE_FINETUNING").
func (x Phase) Label() string {
	if l, ok := phaseLabels[x]; ok {
		return l
	}
	return x.String()
}
