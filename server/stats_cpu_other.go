//go:build !unix

package server

import "time"

// cpuTime returns -1: the process's CPU time is not read on this system.
func cpuTime() time.Duration { return -1 }
