package slots

import (
	"encoding/json"
	"testing"
)

func TestParseConvertsWireDecimalsToBaseUnits(t *testing.T) {
	cases := []struct {
		slot    Name
		in      string
		want    int64
		wantErr string
	}{
		{CPU, "2.5", 2500, ""},
		{CPU, "0.001", 1, ""},
		{CPU, "0.0005", 0, "cpu has more precision than 0.001 core allows"},
		{Mem, "4294967296", 4294967296, ""},
		{Mem, "1.5", 0, "mem has more precision than whole units allows"},
		{CUDAShares, "0.25", 25, ""},
		{CUDADevice, "-1", 0, "cuda.device must not be negative"},
		{CPU, "two", 0, `cpu must be a number, not "two"`},
		{"tpu", "1", 0, `unknown slot "tpu" (known: cpu, mem, cuda.device, cuda.shares)`},
	}
	for _, c := range cases {
		got, err := Parse(c.slot, c.in)
		if c.wantErr != "" {
			if err == nil || err.Error() != c.wantErr {
				t.Errorf("Parse(%s, %q) error = %v, want %q", c.slot, c.in, err, c.wantErr)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("Parse(%s, %q) = %d, %v; want %d", c.slot, c.in, got, err, c.want)
		}
	}
}

func TestLimitsRoundTripWritesNullForUnlimited(t *testing.T) {
	var l Limits
	if err := json.Unmarshal([]byte(`{"cpu":2,"mem":null,"cuda.shares":1.5}`), &l); err != nil {
		t.Fatal(err)
	}
	if len(l) != 2 || l[CPU] != 2000 || l[CUDAShares] != 150 {
		t.Fatalf("parsed %v", l)
	}
	b, err := json.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"cpu":2,"cuda.device":null,"cuda.shares":1.5,"mem":null}`
	if string(b) != want {
		t.Fatalf("marshal = %s, want %s", b, want)
	}
}

func TestSlotsArithmeticIsExact(t *testing.T) {
	a := Slots{CPU: 1500, Mem: 1 << 30}
	b := Slots{CPU: 500, CUDAShares: 25}
	sum := a.Add(b)
	if sum[CPU] != 2000 || sum[Mem] != 1<<30 || sum[CUDAShares] != 25 {
		t.Fatalf("sum %v", sum)
	}
	if diff := sum.Sub(a); diff[CPU] != 500 || diff[CUDAShares] != 25 || len(diff) != 2 {
		t.Fatalf("diff %v", diff)
	}
	if !b.FitsIn(sum) || sum.FitsIn(b) {
		t.Fatal("FitsIn is wrong")
	}
	got := sum.Exceeding(Limits{CPU: 1000, Mem: 2 << 30})
	if len(got) != 1 || got[0] != "cpu 2 > 1" {
		t.Fatalf("Exceeding = %q", got)
	}
	if a[CUDADevice] != 0 || len(a) != 2 {
		t.Fatal("Add must not change its receiver")
	}
}
