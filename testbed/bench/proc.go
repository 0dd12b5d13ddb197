// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// clockTick is USER_HZ, the unit of utime and stime in /proc/<pid>/stat:
// 100 on every Linux architecture Go supports.
const clockTick = 100

// procSample is what /proc says about one process at one moment.
type procSample struct {
	CPU time.Duration // utime + stime, every thread
	RSS int64         // VmRSS, bytes
	HWM int64         // VmHWM (peak RSS since start), bytes
}

// readProc reads /proc/<pid>/stat and /proc/<pid>/status.
func readProc(pid int) (procSample, error) {
	var s procSample
	if pid <= 0 {
		return s, errors.New("no such process")
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	if s.CPU, err = parseStatCPU(stat); err != nil {
		return s, err
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	s.RSS, s.HWM = parseStatusMem(status)
	return s, nil
}

// parseStatCPU returns utime+stime from a /proc/<pid>/stat line. The second
// field (comm) is in parentheses and may hold spaces, so fields are counted
// from the last ')'.
func parseStatCPU(stat []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("malformed stat")
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("malformed stat: %d fields", len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("malformed stat: utime %q stime %q", f[11], f[12])
	}
	return time.Duration(ut+st) * time.Second / clockTick, nil
}

// parseStatusMem returns VmRSS and VmHWM in bytes from /proc/<pid>/status.
func parseStatusMem(status []byte) (rss, hwm int64) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch k {
		case "VmRSS":
			rss = parseKB(v)
		case "VmHWM":
			hwm = parseKB(v)
		}
	}
	return rss, hwm
}

func parseKB(v string) int64 {
	f := strings.Fields(v)
	if len(f) == 0 {
		return 0
	}
	n, _ := strconv.ParseInt(f[0], 10, 64)
	return n * 1024
}

// machineCPU is the busy and total jiffies of the whole machine (/proc/stat
// "cpu" line): how busy the machine was, other tenants included.
type machineCPU struct{ busy, total int64 }

func readMachineCPU() machineCPU {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machineCPU{}
	}
	return parseMachineCPU(b)
}

func parseMachineCPU(b []byte) machineCPU {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 5 || f[0] != "cpu" {
		return machineCPU{}
	}
	var m machineCPU
	for i, s := range f[1:] {
		n, _ := strconv.ParseInt(s, 10, 64)
		// user nice system idle iowait irq softirq steal guest guest_nice;
		// guest time is already counted in user.
		if i >= 8 {
			break
		}
		m.total += n
		if i != 3 && i != 4 {
			m.busy += n
		}
	}
	return m
}

// busyCores is the average number of busy cores between two readings.
func busyCores(a, b machineCPU) float64 {
	if b.total <= a.total {
		return 0
	}
	return float64(b.busy-a.busy) / float64(b.total-a.total) * float64(runtime.NumCPU())
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func uptime() string {
	out, err := exec.Command("uptime").Output()
	if err != nil {
		return "load average: " + loadAvg()
	}
	return strings.TrimSpace(string(out))
}

// machine describes the host for the report.
type machine struct {
	CPUs      int
	CPUModel  string
	MemTotal  int64
	Kernel    string
	GoVersion string
}

func describeMachine() machine {
	m := machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && k == "MemTotal" {
				m.MemTotal = parseKB(v)
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if out, err := exec.Command("go", "version").Output(); err == nil {
		m.GoVersion = strings.TrimSpace(strings.TrimPrefix(string(out), "go version "))
	}
	return m
}

// procMeter measures one process over a window: CPU used, RSS sampled.
type procMeter struct {
	pid    int
	start  procSample
	began  time.Time
	maxRSS int64
	last   procSample
	lastAt time.Time
}

func newProcMeter(pid int) *procMeter {
	m := &procMeter{pid: pid, began: time.Now()}
	m.start, _ = readProc(pid)
	m.last, m.lastAt = m.start, m.began
	m.maxRSS = m.start.RSS
	return m
}

// sample records the current RSS (call it often enough to catch peaks; VmHWM
// catches them anyway, since process start).
func (m *procMeter) sample() {
	if s, err := readProc(m.pid); err == nil {
		m.last, m.lastAt = s, time.Now()
		if s.RSS > m.maxRSS {
			m.maxRSS = s.RSS
		}
	}
}

// cores is the average CPU use from the start to the last sample, in cores.
func (m *procMeter) cores() float64 {
	wall := m.lastAt.Sub(m.began)
	if wall <= 0 {
		return 0
	}
	return m.cpu().Seconds() / wall.Seconds()
}

func (m *procMeter) cpu() time.Duration { return m.last.CPU - m.start.CPU }

func mib(b int64) float64 { return float64(b) / (1 << 20) }
