package consumer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/enrollstatus/enrollstatus/projection"
)

// cloudEvent is a CloudEvents 1.0 structured-mode JSON event.
type cloudEvent struct {
	SpecVersion string          `json:"specversion"`
	Type        string          `json:"type"`
	ID          string          `json:"id"`
	Source      string          `json:"source"`
	Time        *flexTime       `json:"time"`
	Data        json.RawMessage `json:"data"`
}

type jsonKind int

const (
	jsonUnknown jsonKind = iota
	jsonCloudEvent
	jsonDebezium
)

// probeKind tells a CloudEvent from a Debezium change event by their
// top-level keys, without decoding the whole message: it reads the keys of
// the top-level object as a map would hold them, without building one. b
// must be valid JSON (jsonscan.Valid): the decoders rely on it.
func probeKind(b []byte) jsonKind {
	spec, payload, op, ok := probeKeys(b)
	switch {
	case !ok:
		return jsonUnknown
	case spec:
		return jsonCloudEvent
	case payload, op:
		return jsonDebezium
	}
	return jsonUnknown
}

// slowCloudEvent decodes any CloudEvent with encoding/json: the reference
// the fast path agrees with.
func slowCloudEvent(m Message) (Decoded, error) {
	// The type first: an unknown one is skipped, whatever the rest holds
	// (CloudEvents' data is optional, and its time is none of our business).
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(m.Value, &head); err != nil {
		return Decoded{Type: "unknown"}, undecodable("CloudEvent: %v", err)
	}
	if head.Type == "" {
		return Decoded{Type: "unknown"}, undecodable("CloudEvent without a type")
	}
	if _, known := knownTypes[head.Type]; !known {
		return Decoded{Type: typeLabel(head.Type), Ignored: unknownType(head.Type)}, nil
	}
	var ce cloudEvent
	if err := json.Unmarshal(m.Value, &ce); err != nil {
		return Decoded{Type: "unknown"}, undecodable("CloudEvent: %v", err)
	}
	dec := Decoded{Type: typeLabel(ce.Type)}
	if ce.SpecVersion != "1.0" {
		return dec, undecodable("CloudEvent specversion %q, want 1.0", ce.SpecVersion)
	}
	if len(bytes.TrimSpace(ce.Data)) == 0 || string(ce.Data) == "null" {
		return dec, undecodable("CloudEvent %s without data", ce.Type)
	}
	var at time.Time
	if ce.Time != nil {
		at = time.Time(*ce.Time)
	}
	e, ignored, err := cloudEventData(ce.Type, ce.Data, at)
	if err != nil {
		return dec, err
	}
	dec.Ignored = ignored
	if e != nil {
		dec.Events = []projection.Event{e}
	}
	return dec, nil
}

// cloudEventData decodes the data of a CloudEvent of type ceType.
func cloudEventData(ceType string, data json.RawMessage, at time.Time) (e projection.Event, ignored string, err error) {
	decode := func(v any) error {
		if err := json.Unmarshal(data, v); err != nil {
			return undecodable("%s data: %v", ceType, err)
		}
		return nil
	}
	needTime := func() error {
		if at.IsZero() {
			return undecodable("%s without an event time", ceType)
		}
		return nil
	}
	switch ceType {
	case TypeEnrollmentCreated, TypeEnrollmentChanged, TypeUnenrollmentComplete:
		var d struct {
			Enrollment enrollmentData `json:"enrollment"`
		}
		if err := decode(&d); err != nil {
			return nil, "", err
		}
		if err := needTime(); err != nil {
			return nil, "", err
		}
		e, err := enrollmentEvent(ceType, d.Enrollment, at)
		return e, "", err
	case TypeCatalogInfoChanged:
		var d struct {
			CatalogInfo catalogInfoData `json:"catalog_info"`
		}
		if err := decode(&d); err != nil {
			return nil, "", err
		}
		if err := needTime(); err != nil {
			return nil, "", err
		}
		return projection.CourseInfo{CourseID: d.CatalogInfo.CourseKey, Name: d.CatalogInfo.Name, Time: at}, "", nil
	case TypeTrackingEvent:
		// The name first: an event of another name is ignored whatever its
		// timestamp holds.
		var d struct {
			TrackingLog struct {
				Name      string          `json:"name"`
				Timestamp json.RawMessage `json:"timestamp"`
				Data      json.RawMessage `json:"data"`
			} `json:"tracking_log"`
		}
		if err := decode(&d); err != nil {
			return nil, "", err
		}
		t := d.TrackingLog
		if t.Name != CompletionEventName {
			return nil, fmt.Sprintf("tracking event %q", truncate(t.Name, 100)), nil
		}
		var stamp flexTime
		if len(t.Timestamp) > 0 {
			if err := json.Unmarshal(t.Timestamp, &stamp); err != nil {
				return nil, "", undecodable("%s data: tracking_log.timestamp: %v", ceType, err)
			}
		}
		e, err := trackingEvent(trackingLogData{Name: t.Name, Timestamp: stamp, Data: t.Data}, at)
		return e, "", err
	case TypeCourse:
		var d courseData
		if err := decode(&d); err != nil {
			return nil, "", err
		}
		if err := needTime(); err != nil {
			return nil, "", err
		}
		return projection.CourseInfo{CourseID: d.CourseKey, Name: d.DisplayName,
			MobileAvailable: d.MobileAvailable, Time: at}, "", nil
	case TypeUserRetired:
		var d retiredData
		if err := decode(&d); err != nil {
			return nil, "", err
		}
		return projection.Retirement{UserID: int64(d.UserID), Username: d.Username, Time: at}, "", nil
	}
	return nil, unknownType(ceType), nil
}

// unknownType is why an event of an unknown type is ignored.
func unknownType(ceType string) string { return fmt.Sprintf("unknown type %q", truncate(ceType, 100)) }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
