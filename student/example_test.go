package student_test

import (
	"fmt"

	"github.com/deitkd/deitkd/student"
)

// A training step and an evaluation on one batch: images NCHW float32,
// labels and the teacher's hard labels, all in memory.
func Example() {
	cfg, _ := student.Preset("fm-tiny")
	m, err := student.New(cfg, 0)
	if err != nil {
		panic(err)
	}
	tc, err := student.NewRecipe(student.RecipeDefault, 4) // every field filled; override what you set
	if err != nil {
		panic(err)
	}
	tc.StepsPerEpoch, tc.Loss.Distill = 100, "hard"
	tr, err := student.NewTrainer(m, tc)
	if err != nil {
		panic(err)
	}
	const B = 4
	b := student.Batch{
		Images:      make([]float32, B*1*28*28),
		Labels:      []int{0, 1, 2, 3},
		TeacherHard: []int{0, 1, 2, 9},
	}
	st, err := tr.TrainStep(b)
	if err != nil {
		panic(err)
	}
	ev, err := m.Eval(b, student.FuseProbs)
	if err != nil {
		panic(err)
	}
	fmt.Println(st.Step, st.Loss.Total > 0, ev.N, len(m.Params()))
	// Output: 0 true 4 59
}
