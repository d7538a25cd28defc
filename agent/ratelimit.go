package main

import (
	"sync"
	"time"
)

// rateLimiter caps the bytes per second the agent sends for the destination over all its connections: source
// networks are often shared with production, and the copy must not starve them. Zero means no limit.
type rateLimiter struct {
	mu     sync.Mutex
	perSec int64
	next   time.Time
}

var sendLimit = &rateLimiter{}

func (r *rateLimiter) wait(n int) {
	if r.perSec <= 0 {
		return
	}
	r.mu.Lock()
	now := time.Now()
	if r.next.Before(now) {
		r.next = now
	}
	r.next = r.next.Add(time.Duration(int64(n) * int64(time.Second) / r.perSec))
	until := r.next
	r.mu.Unlock()
	time.Sleep(time.Until(until))
}
