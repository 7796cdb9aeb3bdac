package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// The deep copies runtime.Object needs, written out (what controller-gen
// would generate; TestDeepCopy checks them field by field).

// DeepCopyInto copies j into out.
func (j *WhorlJob) DeepCopyInto(out *WhorlJob) {
	*out = *j
	out.TypeMeta = j.TypeMeta
	j.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	j.Spec.DeepCopyInto(&out.Spec)
	j.Status.DeepCopyInto(&out.Status)
}

// DeepCopy returns a copy of j.
func (j *WhorlJob) DeepCopy() *WhorlJob {
	if j == nil {
		return nil
	}
	out := new(WhorlJob)
	j.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (j *WhorlJob) DeepCopyObject() runtime.Object { return j.DeepCopy() }

// DeepCopyInto copies l into out.
func (l *WhorlJobList) DeepCopyInto(out *WhorlJobList) {
	*out = *l
	out.TypeMeta = l.TypeMeta
	l.ListMeta.DeepCopyInto(&out.ListMeta)
	if l.Items != nil {
		out.Items = make([]WhorlJob, len(l.Items))
		for i := range l.Items {
			l.Items[i].DeepCopyInto(&out.Items[i])
		}
	}
}

// DeepCopy returns a copy of l.
func (l *WhorlJobList) DeepCopy() *WhorlJobList {
	if l == nil {
		return nil
	}
	out := new(WhorlJobList)
	l.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (l *WhorlJobList) DeepCopyObject() runtime.Object { return l.DeepCopy() }

// DeepCopyInto copies s into out.
func (s *WhorlJobSpec) DeepCopyInto(out *WhorlJobSpec) {
	*out = *s
	if s.Job != nil {
		out.Job = s.Job.DeepCopy()
	}
	if s.Workers.Min != nil {
		v := *s.Workers.Min
		out.Workers.Min = &v
	}
	if s.TTLSecondsAfterFinished != nil {
		v := *s.TTLSecondsAfterFinished
		out.TTLSecondsAfterFinished = &v
	}
	if s.Results != nil {
		r := *s.Results
		out.Results = &r
	}
}

// DeepCopyInto copies s into out.
func (s *WhorlJobStatus) DeepCopyInto(out *WhorlJobStatus) {
	*out = *s
	if s.ETA != nil {
		out.ETA = s.ETA.DeepCopy()
	}
	if s.Result != nil {
		r := *s.Result
		out.Result = &r
	}
	if s.StartTime != nil {
		out.StartTime = s.StartTime.DeepCopy()
	}
	if s.CompletionTime != nil {
		out.CompletionTime = s.CompletionTime.DeepCopy()
	}
	if s.Conditions != nil {
		out.Conditions = make([]metav1.Condition, len(s.Conditions))
		for i := range s.Conditions {
			s.Conditions[i].DeepCopyInto(&out.Conditions[i])
		}
	}
}

// DeepCopy returns a copy of s.
func (s *WhorlJobStatus) DeepCopy() *WhorlJobStatus {
	if s == nil {
		return nil
	}
	out := new(WhorlJobStatus)
	s.DeepCopyInto(out)
	return out
}
