// create_delete: containerd/cgroups v2 NewManager + Delete of N groups below PARENT, and
// the raw mkdir/rmdir pair, timed in one process; prints one JSON line (seconds per pair,
// wall and CPU: user+system time of the process).
// Built and run by benchmarks/create_delete.py when a Go toolchain and the library's
// source are installed (Debian: golang-go, golang-github-containerd-cgroups-dev).
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	cgroupsv2 "github.com/containerd/cgroups/v2"
)

// cpu is the process's user+system time so far, in seconds.
func cpu() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

func main() {
	if len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: create_delete MOUNTPOINT PARENT N TAG")
		os.Exit(2)
	}
	mnt, parent, tag := os.Args[1], os.Args[2], os.Args[4]
	n, err := strconv.Atoi(os.Args[3])
	if err != nil || n <= 0 {
		fmt.Fprintln(os.Stderr, "N must be a positive number")
		os.Exit(2)
	}
	res := &cgroupsv2.Resources{}
	c := cpu()
	t := time.Now()
	for i := 0; i < n; i++ {
		m, err := cgroupsv2.NewManager(mnt, fmt.Sprintf("%s/go-%s-%d", parent, tag, i), res)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := m.Delete(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	lib := time.Since(t).Seconds() / float64(n)
	libCPU := (cpu() - c) / float64(n)
	c = cpu()
	t = time.Now()
	for i := 0; i < n; i++ {
		p := filepath.Join(mnt, parent, fmt.Sprintf("go-raw-%s-%d", tag, i))
		if err := os.Mkdir(p, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := os.Remove(p); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	raw := time.Since(t).Seconds() / float64(n)
	rawCPU := (cpu() - c) / float64(n)
	out, _ := json.Marshal(map[string]float64{
		"go": lib, "go_raw": raw, "go_cpu": libCPU, "go_raw_cpu": rawCPU,
	})
	fmt.Println(string(out))
}
