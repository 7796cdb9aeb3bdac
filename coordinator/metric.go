package coordinator

import (
	"time"

	"github.com/whorl-ml/whorl/job"
	pb "github.com/whorl-ml/whorl/proto/whorl/coordinator/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The step and epoch statistics cross three boundaries: the wire
// (pb.StepMetrics, pb.EpochMetrics), the raft state (StepMetric,
// EpochMetric, whose JSON is the snapshot format) and the job's terms
// (job.StepStat, job.EpochStat, what the single-process loop computes).
// Each crossing is one function below; metric_test.go fills every field
// and checks each survives, so a field added to one side must be carried.

// stepMetricPB is m on the wire (JobStatus's recent steps).
func stepMetricPB(m StepMetric) *pb.StepMetrics {
	return &pb.StepMetrics{Epoch: uint32(m.Epoch), Step: uint32(m.Step), Generation: m.Generation,
		Loss: m.Loss, Accuracy: m.Accuracy, ClassLoss: m.ClassLoss, ClassAccuracy: m.ClassAccuracy,
		Samples: uint32(m.Samples), StepTime: durationPB(m.StepTime), Time: timestamppb.New(m.Time)}
}

// stepMetricOf is a step metric from the wire as the state records it
// (a checkpoint header's last step): its samples are the step's images in
// the epoch plan, not the reporting rank's part.
func stepMetricOf(m *pb.StepMetrics, samples int) StepMetric {
	var at time.Time
	if m.GetTime() != nil {
		at = m.GetTime().AsTime()
	}
	return StepMetric{Epoch: int(m.GetEpoch()), Step: int(m.GetStep()), Generation: m.GetGeneration(),
		Loss: m.GetLoss(), Accuracy: m.GetAccuracy(), ClassLoss: m.GetClassLoss(), ClassAccuracy: m.GetClassAccuracy(),
		Samples: samples, StepTime: m.GetStepTime().AsDuration(), Time: at}
}

// Stat is the step's statistic in the job's terms; a step recorded
// without its size counts as one image.
func (m StepMetric) Stat() job.StepStat {
	return job.StepStat{Images: max(m.Samples, 1), Loss: float64(m.Loss), Accuracy: float64(m.Accuracy),
		ClassLoss: float64(m.ClassLoss), ClassAccuracy: float64(m.ClassAccuracy), Seconds: m.StepTime.Seconds()}
}

// epochMetricOf is the state's record of job.EpochMean's statistic of
// epoch (0-based) over steps steps.
func epochMetricOf(epoch, steps int, es job.EpochStat) EpochMetric {
	return EpochMetric{Epoch: epoch, Steps: steps, Loss: es.Loss, Accuracy: es.Accuracy,
		ClassLoss: es.ClassLoss, ClassAccuracy: es.ClassAccuracy, Seconds: es.Seconds}
}

// Stat is the epoch's statistic in the job's terms (1-based epoch).
func (e EpochMetric) Stat() job.EpochStat {
	return job.EpochStat{Epoch: e.Epoch + 1, Loss: e.Loss, Accuracy: e.Accuracy, ClassLoss: e.ClassLoss, ClassAccuracy: e.ClassAccuracy,
		Seconds: e.Seconds}
}

// epochMetricPB is e on the wire (1-based epoch, float32; the seconds stay
// in the state: the report reads them from Stat).
func epochMetricPB(e EpochMetric) *pb.EpochMetrics {
	return &pb.EpochMetrics{Epoch: uint32(e.Epoch + 1), Steps: uint32(e.Steps), Loss: float32(e.Loss), Accuracy: float32(e.Accuracy),
		ClassLoss: float32(e.ClassLoss), ClassAccuracy: float32(e.ClassAccuracy)}
}
