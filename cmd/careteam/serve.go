package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	httpapi "github.com/careteam/careteam/internal/http"
	"github.com/careteam/careteam/internal/store"
)

func init() {
	commands["serve"] = command{
		summary: "serve the REST API on LISTEN_ADDR against DATABASE_URL",
		run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			if len(args) != 0 {
				return errUsage
			}
			cfg, err := loadConfig()
			if err != nil {
				return err
			}
			return serve(ctx, cfg, stdout)
		},
	}
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

// serve runs the service until ctx ends, then shuts down gracefully: it stops
// accepting, lets requests in flight finish up to the shutdown timeout, and
// closes the pool last.
func serve(ctx context.Context, cfg config, logOut io.Writer) error {
	out := newBufferedLog(logOut)
	defer out.Close()
	log := newLogger(out, cfg.LogLevel)

	pool, err := openPool(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()

	reg := prometheus.NewRegistry()
	httpapi.RegisterProcessCollectors(reg)
	httpapi.RegisterPoolCollector(reg, pool)
	st := store.New(pool)
	httpapi.RegisterImportCollector(reg, st)
	handler := httpapi.New(st, httpapi.Options{
		Log:            log,
		Registry:       reg,
		RequestTimeout: cfg.RequestTimeout,
	})

	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      cfg.RequestTimeout + 5*time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
		// Requests outlive a client that hangs up only as long as their
		// queries; the base context is not the signal context, so that a
		// SIGTERM lets requests in flight finish.
		BaseContext: func(net.Listener) context.Context { return context.Background() },
	}

	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.ListenAddr, err)
	}
	log.Info("listening", slog.String("addr", ln.Addr().String()))
	// Scripts wait for this line: it goes out at once.
	out.flush()

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	log.Info("shutting_down", slog.Duration("timeout", cfg.ShutdownTimeout))
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Error("shutdown_incomplete", slog.String("err", err.Error()))
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("stopped")
	return nil
}
