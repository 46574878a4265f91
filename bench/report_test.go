package bench

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestReportCheck(t *testing.T) {
	ok := &Report{Deliveries: 100, Expected: 100}
	if err := ok.Check(); err != nil {
		t.Fatalf("Check of a clean run: %v", err)
	}
	bad := &Report{Deliveries: 97, Expected: 100, Lost: 3, Duplicates: 2, OutOfOrder: 1}
	err := bad.Check()
	if !errors.Is(err, ErrDelivery) {
		t.Fatalf("Check: %v, want ErrDelivery", err)
	}
	for _, want := range []string{"3 of 100 deliveries lost", "2 duplicate", "1 deliveries out of order"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Check: %q does not say %q", err, want)
		}
	}
}

func TestReportJSONIsOneLine(t *testing.T) {
	b, err := json.Marshal(&Report{Transport: WebSocket, Notes: []string{"a\nb"}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "\n") || !strings.Contains(string(b), `"transport":"ws"`) {
		t.Fatalf("JSON report %s", b)
	}
}
