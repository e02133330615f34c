package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/warmpool/warmpool"
)

// TestSummaryShowsEveryTableEntry: post's and doctor's summaries, text and
// JSON, show a count of every close reason, dial failure kind and error kind
// of warmpool's tables, whatever they hold: a value added there shows here
// without a change to the CLI.
func TestSummaryShowsEveryTableEntry(t *testing.T) {
	type entry struct {
		table, name string
		pool        string // the HostStats JSON that sets its count to 1; "" for an error kind
		text        string // the line of doctor's text showing it
	}
	var entries []entry
	for _, r := range warmpool.CloseReasonNames() {
		entries = append(entries, entry{"closed_by", r, fmt.Sprintf(`{"closed": 1, "closed_by": {%q: 1}}`, r),
			fmt.Sprintf("\nclosed        1 (%s 1)\n", r)})
	}
	for _, k := range warmpool.DialFailureKinds() {
		entries = append(entries, entry{"dial_failures", k, fmt.Sprintf(`{"dial_failures": {%q: 1}}`, k),
			fmt.Sprintf("\ndials         1 failed (%s 1), 0 held back", k)})
	}
	for _, k := range warmpool.ErrorKinds() {
		entries = append(entries, entry{"errors", k, "", fmt.Sprintf("\nerrors        1 (1 %s)\n", k)})
	}
	for _, e := range entries {
		t.Run(e.table+"/"+e.name, func(t *testing.T) {
			s := summary{URL: "http://127.0.0.1:8080/answer", Requested: 1, Workers: 1, Sent: 1, Errors: newErrorCounts()}
			if e.pool != "" {
				if err := json.Unmarshal([]byte(e.pool), &s.Pool.HostStats); err != nil {
					t.Fatal(err)
				}
			} else {
				s.Errors[e.name] = 1
			}
			var text, js bytes.Buffer
			if err := writeSummary(&text, s, "text", true); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(text.String(), e.text) {
				t.Errorf("text: got\n%s\nwant it to contain %q", text.String(), e.text)
			}
			if err := writeSummary(&js, s, "json", true); err != nil {
				t.Fatal(err)
			}
			var doc struct {
				Errors map[string]int `json:"errors"`
				Pool   map[string]any `json:"pool"`
			}
			if err := json.Unmarshal(js.Bytes(), &doc); err != nil {
				t.Fatal(err)
			}
			got := any(doc.Errors[e.name])
			if e.table != "errors" {
				got, _ = doc.Pool[e.table].(map[string]any)[e.name]
			}
			if got != 1 && got != 1.0 {
				t.Errorf("JSON: %s.%s = %v, want 1", e.table, e.name, got)
			}
		})
	}
}
