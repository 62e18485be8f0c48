package main

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// The CPU a request costs, split between the server's process and the PostgreSQL
// backends of its pool: on a machine whose cores the load generator, the server and
// PostgreSQL share, throughput follows it, not round trips. Read from /proc (Linux,
// PostgreSQL on the same machine); elsewhere the columns stay empty.

// appName is the application_name a server's connections carry, so that its backends
// can be found in pg_stat_activity.
func appName(k kind) string { return "httpbench_" + k.name }

// cpuMeter reads CPU times.
type cpuMeter struct {
	conn *pgx.Conn // to the bench database, for pg_stat_activity; nil: no figures
}

// newCPUMeter connects to dsn; without /proc it measures nothing.
func newCPUMeter(ctx context.Context, dsn string) *cpuMeter {
	if runtime.GOOS != "linux" {
		return &cpuMeter{}
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return &cpuMeter{}
	}
	return &cpuMeter{conn: conn}
}

func (m *cpuMeter) close(ctx context.Context) {
	if m.conn != nil {
		_ = m.conn.Close(ctx)
	}
}

// cpuTimes are a server's and its backends' CPU times so far.
type cpuTimes struct{ server, postgres time.Duration }

// read returns the CPU times of the process pid and of the backends whose
// application_name is app; ok is false when they cannot be read.
func (m *cpuMeter) read(ctx context.Context, pid int, app string) (cpuTimes, bool) {
	if m.conn == nil || pid == 0 {
		return cpuTimes{}, false
	}
	server, ok := procCPU(pid)
	if !ok {
		return cpuTimes{}, false
	}
	rows, err := m.conn.Query(ctx, "SELECT pid FROM pg_stat_activity WHERE application_name = $1", app)
	if err != nil {
		return cpuTimes{}, false
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return cpuTimes{}, false
	}
	var pg time.Duration
	for _, p := range pids {
		t, ok := procCPU(int(p))
		if !ok { // a backend that ended: its time is lost, and so is the figure
			return cpuTimes{}, false
		}
		pg += t
	}
	return cpuTimes{server: server, postgres: pg}, true
}

// clockTick is the unit of /proc/PID/stat's times (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// procCPU is the user and system time of process pid.
func procCPU(pid int) (time.Duration, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// The command may hold spaces and parentheses: the fields follow its last ')'.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(utime+stime) * clockTick, true
}
