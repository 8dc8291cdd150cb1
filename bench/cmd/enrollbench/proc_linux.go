package main

import "syscall"

// childAttr makes a child die with this process: a driver killed (by the
// OOM killer, or by hand) leaves no worker or server behind, retrying a
// broker that went with it and holding the benchmark lock.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
