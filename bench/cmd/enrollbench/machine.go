package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strings"
)

// machineInfo is what a reader needs to weigh the figures.
type machineInfo struct {
	CPU      string  `json:"cpu"`
	Cores    int     `json:"cores"`
	MemGiB   float64 `json:"mem_gib"`
	Load1    string  `json:"load1_at_start"`
	GoVer    string  `json:"go"`
	OS, Arch string
}

func describeMachine() machineInfo {
	m := machineInfo{Cores: runtime.NumCPU(), GoVer: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		fmt.Sscanf(strings.TrimPrefix(strings.SplitN(string(b), "\n", 2)[0], "MemTotal:"), "%d", &kb)
		m.MemGiB = float64(kb) / (1 << 20)
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.Load1 = strings.Fields(string(b))[0]
	}
	return m
}

func (m machineInfo) Summary() string {
	return fmt.Sprintf("%d cores %s, %.0f GiB, %s; load average %s at start", m.Cores, m.CPU, m.MemGiB, m.GoVer, m.Load1)
}
