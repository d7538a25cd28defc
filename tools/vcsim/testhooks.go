package main

// TEST FAULT INJECTION. Everything in this file exists only so that tests can
// make QueryChangedDiskAreas misbehave the way a buggy or flaky vCenter
// would. It is registered only when the simulator runs with -test-hooks
// (tools/vcsim/launch.ts passes it); without the flag none of these routes
// exist and no SOAP request is inspected.
//
//	POST /vmigrate-test/cbt-fault  {"vm": "<name or moref>", "kind": "<kind>", "count": 1}
//
// makes the next `count` QueryChangedDiskAreas calls for that VM misbehave
// (a new injection replaces a pending one):
//
//	zero-length-window  answers length 0 before the end of the disk (no progress)
//	area-outside-disk   adds a changed area past the disk's capacity
//	query-fault         SOAP fault: FileFault "change tracking data invalid"
//	transient           a flaky vCenter: HTTP 503 for the 1st, 3rd... affected
//	                    call, a dropped connection (TCP reset) for the 2nd, 4th...

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"regexp"

	"github.com/vmware/govmomi/simulator"
)

const (
	faultZeroLengthWindow = "zero-length-window"
	faultAreaOutsideDisk  = "area-outside-disk"
	faultQuery            = "query-fault"
	faultTransient        = "transient"
)

var faultKinds = map[string]bool{faultZeroLengthWindow: true, faultAreaOutsideDisk: true, faultQuery: true, faultTransient: true}

// takeInjectedFault consumes one pending injected fault of the VM, if its
// kind belongs to the caller: the HTTP layer takes "transient", the SOAP
// method the others. Returns the kind ("" for none). e.mu must be held.
func takeInjectedFault(st *vmState, transient bool) string {
	f := st.fault
	if f == nil || f.count <= 0 || (f.kind == faultTransient) != transient {
		return ""
	}
	f.count--
	f.served++
	if f.count == 0 {
		st.fault = nil
	}
	return f.kind
}

var (
	qcdaMethodPattern = regexp.MustCompile(`<(?:[\w.-]+:)?QueryChangedDiskAreas[\s>/]`)
	thisPattern       = regexp.MustCompile(`<(?:[\w.-]+:)?_this\b[^>]*>\s*([^<\s]+)\s*<`)
)

// registerTestHooks adds the TEST FAULT INJECTION routes to mux. Call before
// NewServer (which registers the stock /sdk route; "POST /sdk" is more
// specific, so both coexist).
func registerTestHooks(mux *http.ServeMux, svc *simulator.Service, e *extensions) {
	mux.HandleFunc("POST /vmigrate-test/cbt-fault", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			VM    string `json:"vm"`
			Kind  string `json:"kind"`
			Count *int   `json:"count"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&in); err != nil {
			http.Error(w, "bad JSON: "+err.Error(), http.StatusBadRequest)
			return
		}
		count := 1
		if in.Count != nil {
			count = *in.Count
		}
		if !faultKinds[in.Kind] || count < 0 {
			http.Error(w, "unknown fault kind or negative count", http.StatusBadRequest)
			return
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		moref, ok := e.byName[in.VM]
		if !ok {
			for _, v := range e.byName {
				if v == in.VM {
					moref, ok = v, true
				}
			}
		}
		if !ok {
			http.Error(w, "unknown VM "+in.VM, http.StatusNotFound)
			return
		}
		st := e.stateLocked(moref)
		st.fault = nil
		if count > 0 {
			st.fault = &injectedFault{kind: in.Kind, count: count}
		}
		w.WriteHeader(http.StatusNoContent)
	})

	// The "transient" kind must act below SOAP: peek at QueryChangedDiskAreas
	// requests (only while such a fault is pending) and fail them at the HTTP
	// level; everything else goes to the stock SDK handler unchanged.
	sdk := func(w http.ResponseWriter, r *http.Request) {
		if !e.transientPending() {
			svc.ServeSDK(w, r)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
		_ = r.Body.Close()
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if qcdaMethodPattern.Match(body) {
			if m := thisPattern.FindSubmatch(body); m != nil {
				e.mu.Lock()
				var kind string
				var nth int
				if st := e.vms[string(m[1])]; st != nil {
					if st.fault != nil {
						nth = st.fault.served + 1
					}
					kind = takeInjectedFault(st, true)
				}
				e.mu.Unlock()
				if kind == faultTransient {
					if nth%2 == 0 && dropConnection(w) {
						return
					}
					http.Error(w, "Service Unavailable (vmigrate test fault injection)", http.StatusServiceUnavailable)
					return
				}
			}
		}
		svc.ServeSDK(w, r)
	}
	mux.HandleFunc("POST /sdk", sdk)
	mux.HandleFunc("POST /sdk/vimService", sdk)
}

func (e *extensions) transientPending() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, st := range e.vms {
		if st.fault != nil && st.fault.kind == faultTransient && st.fault.count > 0 {
			return true
		}
	}
	return false
}

// dropConnection resets the client's connection without an answer.
func dropConnection(w http.ResponseWriter) bool {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return false
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return false
	}
	raw := conn
	if t, ok := conn.(*tls.Conn); ok {
		raw = t.NetConn()
	}
	if tcp, ok := raw.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0) // RST instead of an orderly close
	}
	_ = raw.Close()
	return true
}
