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

// set changes the limit; sends already waiting keep the pace they were given.
func (r *rateLimiter) set(perSec int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.perSec = perSec
}

// lowerLimit: the stricter of two limits, zero being none.
func lowerLimit(a, b int64) int64 {
	if a <= 0 || (b > 0 && b < a) {
		return b
	}
	return a
}

func (r *rateLimiter) wait(n int) {
	r.mu.Lock()
	if r.perSec <= 0 {
		r.mu.Unlock()
		return
	}
	now := time.Now()
	if r.next.Before(now) {
		r.next = now
	}
	r.next = r.next.Add(time.Duration(int64(n) * int64(time.Second) / r.perSec))
	until := r.next
	r.mu.Unlock()
	time.Sleep(time.Until(until))
}
