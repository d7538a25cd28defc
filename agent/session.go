package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// pinnedTLS trusts exactly one certificate, by the SHA-256 of its DER bytes: the ISO carries the fingerprint, so no
// CA (and no clock, which a freshly booted machine may not have right) is involved.
func pinnedTLS(fingerprint string) *tls.Config {
	want, _ := hex.DecodeString(strings.ReplaceAll(strings.ToLower(fingerprint), ":", ""))
	return &tls.Config{
		InsecureSkipVerify: true, // replaced by the pin below
		MinVersion:         tls.VersionTLS12,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the destination sent no certificate")
			}
			got := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if len(want) != len(got) || subtle.ConstantTimeCompare(want, got[:]) != 1 {
				return fmt.Errorf("the destination's certificate (SHA-256 %s) is not the one this ISO trusts", hex.EncodeToString(got[:]))
			}
			return nil
		},
	}
}

type Enrollment struct {
	MigrationID  string `json:"migrationId"`
	MachineID    string `json:"machineId"`
	SessionToken string `json:"sessionToken"`
	// SessionExpiresAt: the token's end. The agent enrolls again before it, as the same run, and opens its next
	// connections with the new token; the gateway checks a token when a connection opens, so those open go on.
	SessionExpiresAt time.Time `json:"sessionExpiresAt"`
	// MaxBytesPerSecond: the template's bandwidth limit (0: none).
	MaxBytesPerSecond int64 `json:"maxBytesPerSecond"`
	Gateway           struct {
		Address     string `json:"address"`
		Fingerprint string `json:"fingerprint"`
	} `json:"gateway"`
	Message string `json:"message"`
}

// session is the token connections open with, replaced when the session is renewed.
type session struct {
	mu      sync.Mutex
	token   string
	expires time.Time
}

func (s *session) current() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.token
}

func (s *session) renewed(e *Enrollment) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token, s.expires = e.SessionToken, e.SessionExpiresAt
}

// renewalDelay: a third of what is left, at most an hour before the end; at least ten seconds from now.
func renewalDelay(expires time.Time) time.Duration {
	left := time.Until(expires)
	margin := left / 3
	if margin > time.Hour {
		margin = time.Hour
	}
	if d := left - margin; d > 10*time.Second {
		return d
	}
	return 10 * time.Second
}

// keepRenewing enrolls again before the session token expires, as the same run, for as long as ctx lives. A refusal
// (the key was revoked meanwhile) is told and tried again: the connections already open go on until they end.
func keepRenewing(ctx context.Context, cfg *Config, m *Machine, s *session) {
	for {
		s.mu.Lock()
		expires := s.expires
		s.mu.Unlock()
		if expires.IsZero() {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(renewalDelay(expires)):
		}
		e, err := enroll(ctx, cfg, m)
		if err != nil {
			if ctx.Err() == nil {
				say("could not renew the session (it ends at %s): %v", expires.UTC().Format(time.RFC3339), err)
			}
			continue
		}
		s.renewed(e)
		say("session renewed until %s", e.SessionExpiresAt.UTC().Format(time.RFC3339))
	}
}

// EnrollRefused is the destination saying no (a wrong or revoked key): told on the console, then tried again later,
// since an operator may fix it on the other side.
type EnrollRefused struct {
	Status int
	Title  string
	Detail string
}

func (e *EnrollRefused) Error() string {
	return fmt.Sprintf("the destination refused this machine (%d %s): %s", e.Status, e.Title, e.Detail)
}

func enroll(ctx context.Context, cfg *Config, m *Machine) (*Enrollment, error) {
	body, _ := json.Marshal(map[string]any{"templateId": cfg.TemplateID, "machine": m})
	client := &http.Client{Timeout: 60 * time.Second}
	if strings.HasPrefix(cfg.APIURL, "https://") {
		client.Transport = &http.Transport{TLSClientConfig: pinnedTLS(cfg.APIFingerprint)}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(cfg.APIURL, "/")+"/agent/v1/enroll", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+cfg.EnrollmentKey)
	res, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode != http.StatusOK {
		var p struct{ Title, Detail string }
		_ = json.Unmarshal(raw, &p)
		if p.Detail == "" {
			p.Detail = strings.TrimSpace(string(raw))
		}
		return nil, &EnrollRefused{Status: res.StatusCode, Title: p.Title, Detail: p.Detail}
	}
	var e Enrollment
	if err := json.Unmarshal(raw, &e); err != nil {
		return nil, fmt.Errorf("the destination's answer is not valid JSON: %w", err)
	}
	return &e, nil
}

type hello struct {
	Token string `json:"token"`
	Role  string `json:"role"`
	Disk  int    `json:"disk"`
	RunID string `json:"runId"`
	// Machine: on the control connection, what the agent found, so the gateway can plan the machine.
	Machine *Machine `json:"machine,omitempty"`
}

// dialGateway opens one connection to the gateway and introduces it; the gateway answers with one JSON line.
func dialGateway(ctx context.Context, e *Enrollment, h hello) (net.Conn, *bufio.Reader, error) {
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 20 * time.Second, KeepAlive: 15 * time.Second}, Config: pinnedTLS(e.Gateway.Fingerprint)}
	conn, err := d.DialContext(ctx, "tcp", e.Gateway.Address)
	if err != nil {
		return nil, nil, err
	}
	line, _ := json.Marshal(h)
	if _, err := conn.Write(append(line, '\n')); err != nil {
		conn.Close()
		return nil, nil, err
	}
	br := bufio.NewReader(conn)
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	answer, err := br.ReadString('\n')
	_ = conn.SetReadDeadline(time.Time{})
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("the gateway did not answer: %w", err)
	}
	var a struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal([]byte(answer), &a); err != nil || !a.OK {
		conn.Close()
		if a.Error == "" {
			a.Error = strings.TrimSpace(answer)
		}
		return nil, nil, &EnrollRefused{Status: 403, Title: "gateway refused the session", Detail: a.Error}
	}
	return conn, br, nil
}

// runSession serves the migration until the control connection ends (the destination went away or finished),
// renewing its session token meanwhile.
func runSession(ctx context.Context, cfg *Config, e *Enrollment, m *Machine, runID string, connsPerDisk int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s := &session{}
	s.renewed(e)
	go keepRenewing(ctx, cfg, m, s)
	control, br, err := dialGateway(ctx, e, hello{Token: s.current(), Role: "control", RunID: runID, Machine: m})
	if err != nil {
		return err
	}
	defer control.Close()
	go func() {
		<-ctx.Done()
		control.Close()
	}()
	if connsPerDisk > maxSessionsPerDisk {
		connsPerDisk = maxSessionsPerDisk
	}
	var wg sync.WaitGroup
	for _, d := range m.Disks {
		slots := make(chan struct{}, maxSessionsPerDisk)
		for i := 0; i < connsPerDisk; i++ {
			wg.Add(1)
			go func(d Disk) {
				defer wg.Done()
				diskConnections(ctx, e, s, d, runID, slots)
			}(d)
		}
	}
	err = serveControl(br, control, m)
	cancel()
	wg.Wait()
	return err
}

// maxSessionsPerDisk bounds the connections of a disk, idle and serving: the destination opens a handful at once
// (its copy engine's connections, an inspection, a verification).
const maxSessionsPerDisk = 16

// diskConnections keeps one idle connection for the disk open at the gateway; once the gateway takes it (sends
// "G"), it serves NBD on it and opens the next at once, so the idle ones stay ready however many are serving.
// slots, shared by the disk's connections, holds one token per connection open.
func diskConnections(ctx context.Context, e *Enrollment, s *session, d Disk, runID string, slots chan struct{}) {
	for ctx.Err() == nil {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		conn, br, err := dialGateway(ctx, e, hello{Token: s.current(), Role: "disk", Disk: d.Index, RunID: runID})
		if err != nil {
			<-slots
			select {
			case <-ctx.Done():
			case <-time.After(3 * time.Second):
			}
			continue
		}
		stop := context.AfterFunc(ctx, func() { conn.Close() })
		closeIt := func() {
			stop()
			conn.Close()
			<-slots
		}
		b, err := br.ReadByte()
		if err != nil || b != 'G' {
			closeIt()
			continue
		}
		go func() {
			defer closeIt()
			_ = serveNBD(struct {
				io.Reader
				io.Writer
			}{br, conn}, d)
		}()
	}
}

// serveControl answers the gateway's requests: digests of disk ranges (to tell whether a disk changed since an
// earlier run copied part of it) and messages for the console.
func serveControl(br *bufio.Reader, w io.Writer, m *Machine) error {
	var mu sync.Mutex
	send := func(v any) {
		line, _ := json.Marshal(v)
		mu.Lock()
		defer mu.Unlock()
		_, _ = w.Write(append(line, '\n'))
	}
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			return fmt.Errorf("the connection to the destination ended: %w", err)
		}
		var req struct {
			ID      int    `json:"id"`
			Op      string `json:"op"`
			Text    string `json:"text"`
			Disk    int    `json:"disk"`
			Offset  int64  `json:"offset"`
			Length  int64  `json:"length"`
			Segment int64  `json:"segment"`
		}
		if err := json.Unmarshal(line, &req); err != nil {
			continue
		}
		switch req.Op {
		case "message":
			say("%s", req.Text)
		case "ping":
			send(map[string]any{"id": req.ID, "ok": true, "servedBytes": servedBytes.Load()})
		case "digest":
			go func() {
				digests, err := digestRange(m, req.Disk, req.Offset, req.Length, req.Segment)
				if err != nil {
					send(map[string]any{"id": req.ID, "error": err.Error()})
					return
				}
				send(map[string]any{"id": req.ID, "digests": digests})
			}()
		}
	}
}

func digestRange(m *Machine, disk int, off, length, segment int64) ([]string, error) {
	if disk < 0 || disk >= len(m.Disks) || segment <= 0 || off < 0 || length < 0 || off+length > m.Disks[disk].SizeBytes {
		return nil, errors.New("digest request out of range")
	}
	f, err := os.Open(m.Disks[disk].path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	buf := make([]byte, 1<<20)
	for p := off; p < off+length; p += segment {
		n := segment
		if p+n > off+length {
			n = off + length - p
		}
		h := sha256.New()
		if _, err := io.CopyBuffer(h, io.NewSectionReader(f, p, n), buf); err != nil {
			return nil, err
		}
		out = append(out, hex.EncodeToString(h.Sum(nil)))
	}
	return out, nil
}
