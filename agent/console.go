package main

import (
	"fmt"
	"os"
	"sync"
	"time"
)

// The console is the agent's only user interface: whoever booted the ISO reads it on the machine's screen or serial
// port. Every line says what is happening or what to do.
var consoleMu sync.Mutex

func say(format string, args ...any) {
	consoleMu.Lock()
	defer consoleMu.Unlock()
	fmt.Fprintf(os.Stdout, "vmigrate-agent %s %s\n", time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, args...))
}
