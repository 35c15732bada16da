package streams

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

var ackSamples = []string{
	`{"stream":"PROJECT_p", "seq":42}`,
	`{"stream":"PROJECT_p","seq":42,"duplicate":true}`,
	`{"stream":"PROJECT_p", "domain":"hub", "seq":7}`,
	`{"stream":"PROJECT_p", "seq":18446744073709551615}`,
	`{"stream":"PROJECT_p", "seq":18446744073709551616}`,
	`{"stream":"PROJECT_p","seq":3,"duplicate":false}`,
	` { "seq" : 9 , "stream" : "S" } `,
	`{"stream":"PROJECT_p","seq":5,"batch":"b1","count":3}`,
	`{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 4"},"stream":"PROJECT_p","seq":0}`,
	`{"stream":"PRO\u004aECT","seq":1}`,
	`{"stream":"PROJECT_p","seq":1,"seq":2}`,
	`{"stream":"PROJECT_p","seq":01}`,
	`{"stream":"PROJECT_p","seq":-1}`,
	`{"stream":"PROJECT_p","seq":1.5}`,
	`{"stream":"PROJECT_p","seq":1}x`,
	`{"stream":"PROJECT_p","seq":1,}`,
	`{"stream":"PROJECT_p" "seq":1}`,
	`{"stream":null,"seq":1}`,
	`{}`,
	`{`,
	``,
	`[]`,
	`{"Stream":"PROJECT_p","Seq":1}`,
	`{"stream":"PROJECT_p","seq":1,"duplicate":tru}`,
}

// TestParseAckAgreesWithEncodingJSON: wherever parseAck answers, it
// answers what encoding/json does; it answers for the server's plain acks.
func TestParseAckAgreesWithEncodingJSON(t *testing.T) {
	for _, s := range ackSamples {
		checkAck(t, []byte(s))
	}
	for _, s := range ackSamples[:4] {
		if _, ok := parseAck([]byte(s)); !ok {
			t.Errorf("parseAck(%s) left a plain ack to encoding/json", s)
		}
	}
}

func checkAck(t *testing.T, b []byte) {
	t.Helper()
	got, ok := parseAck(b)
	if !ok {
		return
	}
	var want pubResponse
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatalf("parseAck(%s) = %+v, but encoding/json fails: %v", b, got, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("parseAck(%s) = %+v, encoding/json %+v", b, got, want)
	}
}

func FuzzParseAck(f *testing.F) {
	for _, s := range ackSamples {
		f.Add([]byte(s))
	}
	f.Fuzz(checkAck)
}

// BenchmarkDecodePubResponse: a plain ack read by parseAck and by
// encoding/json.
func BenchmarkDecodePubResponse(b *testing.B) {
	ack := []byte(`{"stream":"PROJECT_bench", "seq":123456}`)
	b.Run("parseAck", func(b *testing.B) {
		for b.Loop() {
			if r, err := decodePubResponse(ack); err != nil || r.Seq != 123456 {
				b.Fatal(r, err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		for b.Loop() {
			var r pubResponse
			if err := json.Unmarshal(ack, &r); err != nil || r.Seq != 123456 {
				b.Fatal(r, err)
			}
		}
	})
}

// TestParseAckReadsServerAcks: the embedded server's acks of an append and
// of its retry (a duplicate) take parseAck's way.
func TestParseAckReadsServerAcks(t *testing.T) {
	e := newEnv(t)
	stream := e.project("acks", 0)
	m, err := e.store.buildMsgs(Append{Stream: stream,
		Msgs: []Msg{{Subject: ProjectSubject("acks", "keys", "K1", "create"), Data: []byte("x"), MsgID: "m1"}}})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []pubResponse{{Stream: stream, Seq: 1}, {Stream: stream, Seq: 1, Duplicate: true}} {
		reply, err := e.store.nc.RequestMsg(m[0], 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := parseAck(reply.Data)
		if !ok || got != want {
			t.Errorf("ack %d %s: parseAck = %+v, %v; want %+v", i, reply.Data, got, ok, want)
		}
	}
}
