package brokerd

// ApiVersions (key 18), versions 0–4.
//
// Lists every key brokerd serves with its version range: the keys in apis
// (dispatch.go) and the group coordinator's keys from group.Keys(). A
// request for a version above 4 (or any unknown version) is answered, as
// Kafka does, with UNSUPPORTED_VERSION and the v0 body listing the ranges,
// so the client retries with a version both sides speak; conn.serve does
// that before the body is decoded, since a too-new body cannot be parsed.
// The response header is always v0 (no tagged fields), also as Kafka does.
//
// Not supported: feature flags (SupportedFeatures and FinalizedFeatures
// are empty) and the v5 cluster/node check.

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"

	"strait/brokerd/group"
)

// apiVersionsResponse lists every key and version range served.
func apiVersionsResponse(version int16, sasl bool) *kmsg.ApiVersionsResponse {
	r := kmsg.NewPtrApiVersionsResponse()
	r.Version = version
	keys := map[int16]apiRange{}
	for k, v := range group.Keys() {
		keys[k] = apiRange{0, v}
	}
	for k, v := range apis {
		if (k == int16(kmsg.SASLHandshake) || k == int16(kmsg.SASLAuthenticate)) && !sasl {
			continue
		}
		keys[k] = v
	}
	sorted := make([]int16, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	for _, k := range sorted {
		a := kmsg.NewApiVersionsResponseApiKey()
		a.ApiKey, a.MinVersion, a.MaxVersion = k, keys[k].min, keys[k].max
		r.ApiKeys = append(r.ApiKeys, a)
	}
	return r
}
