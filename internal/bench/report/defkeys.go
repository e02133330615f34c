package report

import (
	"maps"
	"slices"
)

// dataKeyed are the objects of the JSON report keyed by data, not by field:
// one definition covers each, and its keys are not fields.
var dataKeyed = map[string]bool{"protocols": true, "by_kind": true, "status_codes": true, "http_client": true, "definitions": true,
	"hosts": true, "failures_by_kind": true, "by_reason": true}

// DefinitionKeys lists the definition key of every field of a JSON report
// decoded into doc, as definitions names them (see there), sorted and
// without duplicates. A reader of the JSON can look each field up with it;
// the tests check every field has a definition.
func DefinitionKeys(doc map[string]any) []string {
	keys := map[string]bool{}
	var walk func(parent string, v any)
	walk = func(parent string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				key := k
				if parent != "" && parent != "modes" {
					key = parent + "." + k
				}
				keys[key] = true
				if !dataKeyed[k] {
					walk(k, e)
				}
			}
		case []any:
			for _, e := range v {
				walk(parent, e)
			}
		}
	}
	walk("", doc)
	return slices.Sorted(maps.Keys(keys))
}
