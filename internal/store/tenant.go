package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/careteam/careteam/internal/apikey"
	"github.com/careteam/careteam/internal/dbgen"
)

// AppRole is the database role the service runs as: it owns nothing and
// cannot bypass row-level security.
const AppRole = "careteam_app"

// DefaultOrganizationID is the organization that the migrations carried
// existing rows into, and that operator tools write to unless told
// otherwise.
var DefaultOrganizationID = uuid.MustParse("00000000-0000-0000-0000-000000000001")

// ErrUnauthenticated means no active key matches; it does not say whether
// the key ever existed. ErrForbidden means the key lacks the scope the
// request needs.
var (
	ErrUnauthenticated = errors.New("unauthenticated")
	ErrForbidden       = errors.New("forbidden")
)

// errNoTenant means a store method was called without a tenant: a
// programming error, refused rather than run unscoped.
var errNoTenant = errors.New("store: no tenant in the context")

// Tenant is who a transaction acts for: row-level security, column
// defaults and the audit trigger read it from the transaction's settings.
type Tenant struct {
	OrganizationID uuid.UUID
	// ActorID is the API key, or uuid.Nil for operator tools.
	ActorID   uuid.UUID
	RequestID string
}

type tenantKey struct{}

// WithTenant returns ctx carrying t; every store method needs a tenant or
// a credential.
func WithTenant(ctx context.Context, t Tenant) context.Context {
	return context.WithValue(ctx, tenantKey{}, t)
}

// Credential is a request's API key, checked by PostgreSQL in the same
// round trip as the request's first statement (careteam_begin_request),
// which then scopes the transaction to the key's organization.
type Credential struct {
	Key       string
	RequestID string
	// Write says the request changes data and needs the write scope;
	// otherwise it needs read.
	Write    bool
	verified atomic.Bool
}

// Verified reports whether a statement has already accepted the key.
func (c *Credential) Verified() bool { return c.verified.Load() }

type credentialKey struct{}

// WithCredential returns ctx carrying c: store methods then authenticate
// the key inside their own transaction.
func WithCredential(ctx context.Context, c *Credential) context.Context {
	return context.WithValue(ctx, credentialKey{}, c)
}

func tenantFrom(ctx context.Context) (Tenant, bool) {
	t, ok := ctx.Value(tenantKey{}).(Tenant)
	return t, ok && t.OrganizationID != uuid.Nil
}

func credentialFrom(ctx context.Context) *Credential {
	c, _ := ctx.Value(credentialKey{}).(*Credential)
	return c
}

// scoped reports whether ctx names who the store acts for.
func scoped(ctx context.Context) bool {
	_, ok := tenantFrom(ctx)
	return ok || credentialFrom(ctx) != nil
}

// setTenant scopes the transaction q runs in to the context's tenant, or
// authenticates its credential and scopes it to the key's organization.
func setTenant(ctx context.Context, q *dbgen.Queries) error {
	if c := credentialFrom(ctx); c != nil {
		return q.BeginRequest(ctx, dbgen.BeginRequestParams{
			KeyHash:   apikey.Hash(c.Key),
			RequestID: c.RequestID,
			Write:     c.Write,
		})
	}
	t, ok := tenantFrom(ctx)
	if !ok {
		return errNoTenant
	}
	actor := ""
	if t.ActorID != uuid.Nil {
		actor = t.ActorID.String()
	}
	return q.SetTenant(ctx, dbgen.SetTenantParams{
		OrganizationID: t.OrganizationID.String(),
		ActorID:        actor,
		RequestID:      t.RequestID,
	})
}

// tenantSet records that the context's credential, if any, was accepted.
func tenantSet(ctx context.Context) {
	if c := credentialFrom(ctx); c != nil {
		c.verified.Store(true)
	}
}

// ConfigurePool makes every connection of a pool send ids in binary and run
// as AppRole, whatever role it logged in as (the login role must be a member of AppRole, or a
// superuser), so that row-level security applies to the service even on a
// developer's superuser connection.
func ConfigurePool(cfg *pgxpool.Config) {
	previous := cfg.AfterConnect
	cfg.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
		if previous != nil {
			if err := previous(ctx, conn); err != nil {
				return err
			}
		}
		registerUUID(conn)
		if _, err := conn.Exec(ctx, "SET ROLE "+AppRole); err != nil {
			return fmt.Errorf("set role %s (run the migrations first; the login role must be a member): %w",
				AppRole, err)
		}
		return nil
	}
}

// Principal is an authenticated API key.
type Principal struct {
	KeyID          uuid.UUID
	OrganizationID uuid.UUID
	Scopes         []string
}

// CanWrite reports whether the key may change data.
func (p Principal) CanWrite() bool { return slices.Contains(p.Scopes, apikey.ScopeWrite) }

// CanRead reports whether the key may read data.
func (p Principal) CanRead() bool { return slices.Contains(p.Scopes, apikey.ScopeRead) }

// Authenticate returns the principal of an active key. Keys are checked on
// every request and never cached, so a revoked key fails at once.
func (s *Store) Authenticate(ctx context.Context, key string) (Principal, error) {
	if !apikey.WellFormed(key) {
		return Principal{}, ErrUnauthenticated
	}
	row, err := s.q.Authenticate(ctx, apikey.Hash(key))
	if errors.Is(err, pgx.ErrNoRows) {
		return Principal{}, ErrUnauthenticated
	}
	if err != nil {
		return Principal{}, fmt.Errorf("authenticate: %w", translate(err))
	}
	return Principal{KeyID: row.ID, OrganizationID: row.OrganizationID, Scopes: row.Scopes}, nil
}
