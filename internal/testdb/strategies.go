package testdb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/ory/dockertest/v3"
	"github.com/ory/dockertest/v3/docker"

	"github.com/careteam/careteam/internal/pgcluster"
)

// dockerImage is the PostgreSQL image the Docker strategy runs: the major
// version production and the local binaries run.
const dockerImage, dockerTag = "postgres", "15"

// dockerServer runs PostgreSQL in a container when a Docker engine answers.
// Without one, NewPool succeeds and the ping fails at once.
func dockerServer() (server, error) {
	pool, err := dockertest.NewPool("")
	if err != nil {
		return server{}, err
	}
	if err := pool.Client.Ping(); err != nil {
		return server{}, fmt.Errorf("no engine answers: %w", err)
	}

	res, err := pool.RunWithOptions(&dockertest.RunOptions{
		Repository: dockerImage,
		Tag:        dockerTag,
		Env:        []string{"POSTGRES_HOST_AUTH_METHOD=trust"},
		Cmd:        []string{"-c", "fsync=off", "-c", "max_connections=300"},
	}, func(hc *docker.HostConfig) {
		hc.AutoRemove = true
		hc.RestartPolicy = docker.RestartPolicy{Name: "no"}
	})
	if err != nil {
		return server{}, fmt.Errorf("run container: %w", err)
	}
	// A test binary that dies without cleaning up still frees the container.
	_ = res.Expire(30 * 60)

	admin := fmt.Sprintf("postgres://postgres@%s/postgres?sslmode=disable", res.GetHostPort("5432/tcp"))
	pool.MaxWait = 60 * time.Second
	if err := pool.Retry(func() error { return ping(admin) }); err != nil {
		_ = pool.Purge(res)
		return server{}, fmt.Errorf("container never answered: %w", err)
	}

	return server{
		adminURL: admin,
		source:   "a Docker container (" + dockerImage + ":" + dockerTag + ")",
		stop:     func() { _ = pool.Purge(res) },
	}, nil
}

// clusterPrefix names the temporary folders of ephemeral clusters.
const clusterPrefix = "careteam-testdb-"

// ownerFile records, in a cluster's folder, the test binary that owns it.
const ownerFile = "owner.pid"

// localServer starts an ephemeral cluster from the machine's PostgreSQL
// binaries, in a temporary folder removed when the tests end.
func localServer() (server, error) {
	reapOrphans()

	dir, err := os.MkdirTemp("", clusterPrefix)
	if err != nil {
		return server{}, err
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		_ = os.RemoveAll(dir)
		return server{}, err
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cluster, err := pgcluster.Start(ctx, pgcluster.Options{Dir: dir})
	if err != nil {
		_ = os.RemoveAll(dir)
		if errors.Is(err, pgcluster.ErrNoBinaries) {
			return server{}, err
		}
		return server{}, fmt.Errorf("start ephemeral cluster: %w", err)
	}

	return server{
		adminURL: cluster.URL("postgres"),
		source:   fmt.Sprintf("an ephemeral cluster on 127.0.0.1:%d", cluster.Port()),
		stop: func() {
			_ = cluster.Stop()
			_ = cluster.Remove()
		},
	}, nil
}

// reapOrphans stops and removes the ephemeral clusters of test binaries
// that died without cleaning up (a timeout's panic, a kill): nothing else
// would ever stop them.
func reapOrphans() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), clusterPrefix+"*"))
	for _, dir := range dirs {
		raw, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(string(raw))
		if err != nil || pid <= 0 || processAlive(pid) {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_ = pgcluster.StopDir(ctx, dir)
		cancel()
		_ = os.RemoveAll(dir)
	}
}

// processAlive reports whether a process with pid exists.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
