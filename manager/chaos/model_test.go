package chaos_test

import (
	"testing"

	"github.com/anishathalye/porcupine"
)

// The checker must be able to fail: a read that returns an overwritten
// value after the write that replaced it completed is not linearizable; a
// write whose outcome is unknown may or may not have happened.
func TestRegisterModelJudgesHistories(t *testing.T) {
	w := func(client int, v int64, call, ret int64, unknown bool) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Input: regInput{write: true, value: v}, Call: call, Output: regOutput{unknown: unknown}, Return: ret}
	}
	r := func(client int, v int64, call, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Input: regInput{}, Call: call, Output: regOutput{value: v}, Return: ret}
	}
	tests := []struct {
		name    string
		history []porcupine.Operation
		want    bool
	}{
		{"read after write sees it", []porcupine.Operation{w(0, 1, 0, 10, false), r(1, 1, 20, 30)}, true},
		{"stale read after a completed write", []porcupine.Operation{w(0, 1, 0, 10, false), w(0, 2, 11, 20, false), r(1, 1, 30, 40)}, false},
		{"concurrent read may see either", []porcupine.Operation{w(0, 1, 0, 10, false), w(0, 2, 11, 50, false), r(1, 1, 20, 30)}, true},
		{"unknown write seen", []porcupine.Operation{w(0, 7, 0, 1<<62, true), r(1, 7, 20, 30)}, true},
		{"unknown write not seen", []porcupine.Operation{w(0, 7, 0, 1<<62, true), r(1, 0, 20, 30)}, true},
		{"unknown write seen, then unseen", []porcupine.Operation{w(0, 7, 0, 1<<62, true), r(1, 7, 20, 30), r(1, 0, 40, 50)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := porcupine.CheckOperations(registerModel, tt.history); got != tt.want {
				t.Errorf("linearizable = %v, want %v", got, tt.want)
			}
		})
	}
}
