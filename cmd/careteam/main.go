// Command careteam is the care-team service and its operator tools in one
// binary:
//
//	careteam serve                 serve the REST API
//	careteam migrate up|down|status apply or roll back the embedded migrations
//	careteam import PATH...        load FHIR R4 Bundles and Bulk Data NDJSON
//	careteam dev                   migrate and serve against a development database
//
// Configuration comes from the environment; see config.go and the README.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// command is one subcommand.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands is filled by the files that define them.
var commands = map[string]command{}

// errUsage asks main to print the usage and exit 2.
var errUsage = errors.New("usage")

// exitError carries an exit code other than 1, and err to print, or nil
// when the command has said all it had to.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "careteam: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}

	err := cmd.run(ctx, args[1:], stdout, stderr)
	var exit *exitError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage):
		usage(stderr)
		return 2
	case errors.As(err, &exit):
		if exit.err != nil {
			fmt.Fprintf(stderr, "careteam %s: %v\n", args[0], exit.err)
		}
		return exit.code
	default:
		fmt.Fprintf(stderr, "careteam %s: %v\n", args[0], err)
		return 1
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: careteam COMMAND [ARGS]")
	fmt.Fprintln(w)
	names := make([]string, 0, len(commands))
	for name := range commands {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(w, "  %-10s %s\n", name, commands[name].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Environment: DATABASE_URL, LISTEN_ADDR and the others the README lists.")
}
