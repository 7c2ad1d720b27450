// Package httpapi serves careteam's REST contract (../shared/API.md and
// api/openapi.yaml) over the store. It is thin: it decodes and validates
// requests, calls one store method, and encodes the answer or a problem.
package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/careteam/careteam/internal/store"
)

// MaxBodyBytes is the largest request body the service reads.
const MaxBodyBytes = 1 << 20

// Options configure a Server.
type Options struct {
	// Log receives one line per request and one per notable event. Nil
	// discards them.
	Log *slog.Logger
	// Registry receives the service's metrics. Nil makes a new one.
	Registry *prometheus.Registry
	// RequestTimeout bounds each request's work, queries included.
	RequestTimeout time.Duration
}

// Server is the HTTP face of a Store.
type Server struct {
	store   *store.Store
	log     *slog.Logger
	metrics *metrics
	timeout time.Duration
	engine  *gin.Engine
}

func init() {
	gin.SetMode(gin.ReleaseMode)
}

// New returns a Server for st.
func New(st *store.Store, opts Options) *Server {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	if opts.RequestTimeout == 0 {
		opts.RequestTimeout = 10 * time.Second
	}

	s := &Server{
		store:   st,
		log:     opts.Log,
		metrics: newMetrics(opts.Registry),
		timeout: opts.RequestTimeout,
	}
	s.engine = s.routes(opts.Registry)
	return s
}

// ServeHTTP serves one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.engine.ServeHTTP(w, r)
}

func (s *Server) routes(reg *prometheus.Registry) *gin.Engine {
	e := gin.New()
	// The contract has no redirects: a trailing slash is a different path.
	e.RedirectTrailingSlash = false
	e.RedirectFixedPath = false
	// Route on the path as sent: "/v1/patients%2F<id>" is not
	// "/v1/patients/<id>", whatever decoding a proxy in front applies.
	e.UseRawPath = true
	e.UnescapePathValues = true
	e.HandleMethodNotAllowed = true
	e.ContextWithFallback = true

	e.Use(s.withRequestID, s.logRequest, s.recoverPanic)
	e.NoRoute(func(c *gin.Context) {
		writeProblem(c, http.StatusNotFound, CodeNotFound, "No such resource.")
	})
	e.NoMethod(func(c *gin.Context) {
		writeProblem(c, http.StatusMethodNotAllowed, CodeMethodNotAllowed,
			"The resource does not answer that method.")
	})

	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", gin.WrapH(metricsHandler(reg)))

	v1 := e.Group("/v1", s.withDeadline, s.authenticate)
	v1.POST("/patients", s.createPatient)
	v1.GET("/patients/:patient_id", s.getPatient)
	v1.POST("/providers", s.createProvider)
	v1.GET("/providers", s.findProviders)
	v1.GET("/providers/:provider_id", s.getProvider)
	v1.GET("/patients/:patient_id/care-team", s.getCareTeam)
	v1.GET("/patients/:patient_id/care-team/history", s.getCareTeamHistory)
	v1.POST("/patients/:patient_id/care-team", s.addMember)
	v1.DELETE("/patients/:patient_id/care-team/:assignment_id", s.endMember)
	v1.PUT("/patients/:patient_id/care-team/primary", s.reassignPrimary)
	v1.GET("/patients/:patient_id/audit", s.getPatientAudit)
	return e
}

const (
	ctxRequestID  = "careteam.request_id"
	ctxProviderID = "careteam.provider_id"
	ctxCredential = "careteam.credential"
	// ctxVerify holds a func(*gin.Context) bool that checks an unchecked
	// key before a refusal is written; see verifyBeforeRefusing.
	ctxVerify = "careteam.verify"
)

func requestID(c *gin.Context) string {
	return c.GetString(ctxRequestID)
}

// withRequestID takes the client's X-Request-ID when it is sane, or makes
// one, and returns it in the response either way.
func (s *Server) withRequestID(c *gin.Context) {
	id := c.GetHeader("X-Request-ID")
	if !saneRequestID(id) {
		b := make([]byte, 12)
		_, _ = rand.Read(b)
		id = hex.EncodeToString(b)
	}
	c.Set(ctxRequestID, id)
	c.Header("X-Request-ID", id)
	c.Next()
}

// saneRequestID accepts 1 to 128 characters of letters, digits, '-', '_',
// '.' and ':', so that a client's id can go into logs as it is.
func saneRequestID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		ch := id[i]
		switch {
		case ch >= 'a' && ch <= 'z', ch >= 'A' && ch <= 'Z', ch >= '0' && ch <= '9':
		case ch == '-', ch == '_', ch == '.', ch == ':':
		default:
			return false
		}
	}
	return true
}

// withDeadline bounds the request's work; the context reaches every query.
func (s *Server) withDeadline(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.timeout)
	defer cancel()
	c.Request = c.Request.WithContext(ctx)
	c.Next()
}

// logRequest writes one line per request: ids, route template, status,
// duration and size, never bodies or query strings.
func (s *Server) logRequest(c *gin.Context) {
	start := time.Now()
	c.Next()

	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	elapsed := time.Since(start)
	status := c.Writer.Status()
	s.metrics.observe(c.Request.Method, route, status, elapsed)

	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	s.log.LogAttrs(c.Request.Context(), level, "request",
		slog.String("request_id", requestID(c)),
		slog.String("method", c.Request.Method),
		slog.String("route", route),
		slog.Int("status", status),
		slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
		slog.Int("bytes", max(c.Writer.Size(), 0)),
	)
}

// recoverPanic turns a handler's panic into a 500 with the request id and
// keeps the process serving.
func (s *Server) recoverPanic(c *gin.Context) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.LogAttrs(c.Request.Context(), slog.LevelError, "panic",
				slog.String("request_id", requestID(c)),
				// The value's type, not the value: it could hold a patient's
				// details.
				slog.String("panic_type", fmt.Sprintf("%T", v)),
				slog.String("stack", string(debug.Stack())))
			if !c.Writer.Written() {
				writeProblem(c, http.StatusInternalServerError, CodeInternal,
					"Something went wrong on our side; quote the request id when you report it.")
			}
			c.Abort()
		}
	}()
	c.Next()
}

func (s *Server) healthz(c *gin.Context) {
	writeJSON(c, http.StatusOK, "", map[string]string{"status": "ok"})
}

func (s *Server) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		writeProblem(c, http.StatusServiceUnavailable, CodeUnavailable,
			"The database cannot be reached.")
		return
	}
	writeJSON(c, http.StatusOK, "", map[string]string{"status": "ready"})
}
