package brokerd

// AlterClientQuotas (key 49), versions 0–1.
//
// Sets or removes quota values per entity (user, client-id or both, each
// named or, with a null name, the default); see quota.go. Each entry is
// checked on its own and answered with its own error; the accepted
// entries are applied together and persisted (quotas.json, written
// atomically) before the response, unless ValidateOnly. An entity left
// with no value is forgotten.
//
// Errors per entry: INVALID_REQUEST for an unknown entity type, a type
// named twice, an empty entity, an unknown key or a value that is not
// positive; CLUSTER_AUTHORIZATION_FAILED without ALTER_CONFIGS on the
// cluster when the authorizer is on; KAFKA_STORAGE_ERROR when the file
// cannot be written.
//
// Not supported: the ip entity type (KIP-612), controller_mutation_rate.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (cc *conn) handleAlterClientQuotas(req *kmsg.AlterClientQuotasRequest) *kmsg.AlterClientQuotasResponse {
	c := cc.b.c
	resp := req.ResponseKind().(*kmsg.AlterClientQuotasResponse)
	authorized := cc.authorizeCluster(aclOpAlterConfigs)
	type change struct {
		entity quotaEntity
		ops    []kmsg.AlterClientQuotasRequestEntryOp
		slot   int
	}
	var changes []change
	for _, entry := range req.Entries {
		re := kmsg.NewAlterClientQuotasResponseEntry()
		for _, ent := range entry.Entity {
			e := kmsg.NewAlterClientQuotasResponseEntryEntity()
			e.Type, e.Name = ent.Type, ent.Name
			re.Entity = append(re.Entity, e)
		}
		fail := func(err *kerr.Error, msg string) {
			re.ErrorCode = err.Code
			re.ErrorMessage = &msg
		}
		entity, msg := parseQuotaEntity(entry.Entity)
		switch {
		case !authorized:
			fail(kerr.ClusterAuthorizationFailed, "ALTER_CONFIGS on the cluster is required")
		case msg != "":
			fail(kerr.InvalidRequest, msg)
		default:
			for _, op := range entry.Ops {
				switch {
				case !quotaKeys[op.Key]:
					msg = "unknown quota key " + op.Key
				case !op.Remove && !(op.Value > 0):
					msg = "quota " + op.Key + " must be positive"
				}
				if msg != "" {
					break
				}
			}
			if msg != "" {
				fail(kerr.InvalidRequest, msg)
			} else {
				changes = append(changes, change{entity, entry.Ops, len(resp.Entries)})
			}
		}
		resp.Entries = append(resp.Entries, re)
	}
	if req.ValidateOnly || len(changes) == 0 {
		return resp
	}
	q := c.quotas
	q.mu.Lock()
	defer q.mu.Unlock()
	old := make(map[quotaEntity]map[string]float64, len(changes))
	for _, ch := range changes {
		if _, saved := old[ch.entity]; !saved {
			old[ch.entity] = q.mu.values[ch.entity]
		}
		vals := map[string]float64{}
		for k, v := range q.mu.values[ch.entity] {
			vals[k] = v
		}
		for _, op := range ch.ops {
			if op.Remove {
				delete(vals, op.Key)
			} else {
				vals[op.Key] = op.Value
			}
		}
		if len(vals) == 0 {
			delete(q.mu.values, ch.entity)
		} else {
			q.mu.values[ch.entity] = vals
		}
	}
	if err := q.saveLocked(); err != nil {
		for e, v := range old {
			if v == nil {
				delete(q.mu.values, e)
			} else {
				q.mu.values[e] = v
			}
		}
		c.log.Warn("save quotas", "err", err)
		msg := err.Error()
		for _, ch := range changes {
			resp.Entries[ch.slot].ErrorCode = kerr.KafkaStorageError.Code
			resp.Entries[ch.slot].ErrorMessage = &msg
		}
	}
	return resp
}

// parseQuotaEntity turns a request's entity into a quotaEntity, or
// returns why it cannot.
func parseQuotaEntity(parts []kmsg.AlterClientQuotasRequestEntryEntity) (quotaEntity, string) {
	var e quotaEntity
	if len(parts) == 0 {
		return e, "empty entity"
	}
	for _, p := range parts {
		var dst *quotaPart
		switch p.Type {
		case quotaEntityUser:
			dst = &e.User
		case quotaEntityClient:
			dst = &e.Client
		default:
			return e, "unknown entity type " + p.Type
		}
		if dst.Set {
			return e, "entity type " + p.Type + " named twice"
		}
		if p.Name == nil {
			*dst = defaultPart()
		} else {
			*dst = named(*p.Name)
		}
	}
	return e, ""
}
