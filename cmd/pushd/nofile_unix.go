//go:build unix

package main

import (
	"fmt"
	"syscall"
)

// raiseFileLimit raises the soft open-file limit to the hard one, as
// servers commonly do: every subscriber is an open file, and the soft
// limit is often 1,024 where the hard one allows many more.
func raiseFileLimit() (fileLimit, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return fileLimit{}, fmt.Errorf("read the open-file limit: %w", err)
	}
	fl := fileLimit{soft: rl.Cur, hard: rl.Max}
	if rl.Cur < rl.Max {
		raised := rl
		raised.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err != nil {
			return fl, fmt.Errorf("raise the open-file limit from %d to %d: %w", rl.Cur, rl.Max, err)
		}
		fl.raisedFrom, fl.soft = rl.Cur, rl.Max
	}
	return fl, nil
}
