package drill

import "syscall"

// childAttr makes the kernel kill a child when the drill dies, so a
// crashed or interrupted drill leaves no broker or mirror behind.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
