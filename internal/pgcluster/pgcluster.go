// Package pgcluster runs a PostgreSQL cluster of its own from the server
// binaries installed on the machine: an ephemeral one for tests, or a
// persistent one for "make run" on a machine where no server answers.
package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Options says how to run a cluster.
type Options struct {
	// Dir holds the cluster's data folder ("data"), its socket and its log.
	// A folder that already holds a cluster is started as it is.
	Dir string
	// Port is the TCP port on 127.0.0.1; 0 picks a free one.
	Port int
	// Durable keeps fsync on. Tests turn it off: their data is thrown away.
	Durable bool
}

// Cluster is a running PostgreSQL server that this process started.
type Cluster struct {
	opts  Options
	bin   string
	cred  *syscall.Credential
	owner *user.User
}

// ErrNoBinaries means no PostgreSQL server binaries were found.
var ErrNoBinaries = errors.New("no PostgreSQL server binaries (initdb, pg_ctl) found")

// FindBinaries returns the folder holding initdb and pg_ctl: $PG_BINDIR when
// set, then the newest /usr/lib/postgresql/*/bin, then the PATH.
func FindBinaries() (string, error) {
	var candidates []string
	if dir := os.Getenv("PG_BINDIR"); dir != "" {
		candidates = append(candidates, dir)
	}

	versions, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(versions, func(i, j int) bool {
		return pgVersion(versions[i]) > pgVersion(versions[j])
	})
	candidates = append(candidates, versions...)

	if path, err := exec.LookPath("initdb"); err == nil {
		candidates = append(candidates, filepath.Dir(path))
	}

	for _, dir := range candidates {
		if isExecutable(filepath.Join(dir, "initdb")) && isExecutable(filepath.Join(dir, "pg_ctl")) {
			return dir, nil
		}
	}
	return "", ErrNoBinaries
}

func pgVersion(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func isExecutable(path string) bool {
	info, err := os.Stat(path)
	return err == nil && !info.IsDir() && info.Mode()&0o111 != 0
}

// Start initialises the cluster in opts.Dir when it holds none, then starts
// the server and waits until it accepts connections. PostgreSQL refuses to
// run as root, so a root process runs the binaries as the "postgres" user
// and hands it the folder.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	bin, err := FindBinaries()
	if err != nil {
		return nil, err
	}

	c := &Cluster{opts: opts, bin: bin}
	if os.Geteuid() == 0 {
		if err := c.runAsPostgres(); err != nil {
			return nil, err
		}
	}

	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("make cluster folder: %w", err)
	}
	if err := c.chown(opts.Dir); err != nil {
		return nil, err
	}

	if _, err := os.Stat(filepath.Join(c.dataDir(), "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		if err := c.initdb(ctx); err != nil {
			return nil, err
		}
	}

	if c.opts.Port == 0 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		c.opts.Port = port
	}

	if c.running(ctx) {
		// A persistent cluster left running by a process that died.
		return c, nil
	}
	if err := c.start(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// running reports whether the cluster's server is up already.
func (c *Cluster) running(ctx context.Context) bool {
	return c.command(ctx, "pg_ctl", "-D", c.dataDir(), "status").Run() == nil
}

func (c *Cluster) runAsPostgres() error {
	u, err := user.Lookup("postgres")
	if err != nil {
		return fmt.Errorf("running as root needs a postgres user to run the server: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	c.owner = u
	return nil
}

func (c *Cluster) chown(path string) error {
	if c.cred == nil {
		return nil
	}
	if err := os.Chown(path, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
		return fmt.Errorf("hand %s to the postgres user: %w", path, err)
	}
	return nil
}

func (c *Cluster) dataDir() string { return filepath.Join(c.opts.Dir, "data") }
func (c *Cluster) logFile() string { return filepath.Join(c.opts.Dir, "server.log") }

func (c *Cluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, name), args...)
	cmd.Dir = c.opts.Dir
	// The server inherits nothing that would point it at another cluster.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "LANG=C.UTF-8", "TZ=UTC"}
	// A process group of its own keeps a Ctrl-C at the terminal from
	// reaching the server: the process that started it stops it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: c.cred}
	return cmd
}

func (c *Cluster) initdb(ctx context.Context) error {
	args := []string{
		"-D", c.dataDir(), "-U", "postgres", "--auth=trust",
		"--encoding=UTF8", "--locale=C.UTF-8",
	}
	if !c.opts.Durable {
		args = append(args, "--no-sync")
	}
	out, err := c.command(ctx, "initdb", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("initdb: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (c *Cluster) start(ctx context.Context) error {
	settings := []string{
		"-p", strconv.Itoa(c.opts.Port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=" + c.opts.Dir,
		"-c", "max_connections=300",
	}
	if !c.opts.Durable {
		settings = append(settings,
			"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}

	out, err := c.command(ctx, "pg_ctl", "-D", c.dataDir(), "-l", c.logFile(),
		"-w", "-t", "60", "-o", strings.Join(settings, " "), "start").CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl start: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Port returns the TCP port the server listens on.
func (c *Cluster) Port() int { return c.opts.Port }

// URL returns a connection URL for the database name as the postgres
// superuser, over TCP on loopback.
func (c *Cluster) URL(database string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.opts.Port, database)
}

// Stop shuts the server down, aborting open sessions.
func (c *Cluster) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := c.command(ctx, "pg_ctl", "-D", c.dataDir(), "-m", "fast", "-w", "stop").CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Restart starts a stopped cluster again on the same port.
func (c *Cluster) Restart(ctx context.Context) error {
	return c.start(ctx)
}

// Remove deletes the cluster's folder. Stop it first.
func (c *Cluster) Remove() error {
	return os.RemoveAll(c.opts.Dir)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// StopDir stops the cluster whose folder is dir, if it runs, as a process
// that did not start it may: to clean up after one that died.
func StopDir(ctx context.Context, dir string) error {
	bin, err := FindBinaries()
	if err != nil {
		return err
	}
	c := &Cluster{opts: Options{Dir: dir}, bin: bin}
	if os.Geteuid() == 0 {
		if err := c.runAsPostgres(); err != nil {
			return err
		}
	}
	if !c.running(ctx) {
		return nil
	}
	out, err := c.command(ctx, "pg_ctl", "-D", c.dataDir(), "-m", "immediate", "-w", "stop").CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}
