// Package apikey makes and manages the API keys clients authenticate with.
// A key is "ct_" and 43 characters of base64url over 256 random bits; only
// its SHA-256 hash is stored.
package apikey

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/careteam/careteam/internal/dbgen"
)

// The scopes a key can carry.
const (
	ScopeRead  = "read"
	ScopeWrite = "write"
)

const prefix = "ct_"

// ErrNotFound means no active key has that id.
var ErrNotFound = errors.New("no active key with that id")

// Generate returns a new random key.
func Generate() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		// crypto/rand does not fail on supported systems.
		panic(fmt.Sprintf("read random bytes: %v", err))
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

// Hash returns the stored form of key.
func Hash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// WellFormed reports whether key looks like a key, so that obvious garbage
// is refused without a query.
func WellFormed(key string) bool {
	return strings.HasPrefix(key, prefix) && len(key) == len(prefix)+43
}

// ParseScopes reads a comma-separated list such as "read,write".
func ParseScopes(s string) ([]string, error) {
	var scopes []string
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part != ScopeRead && part != ScopeWrite {
			return nil, fmt.Errorf("unknown scope %q: want read, write or both", part)
		}
		if !slices.Contains(scopes, part) {
			scopes = append(scopes, part)
		}
	}
	return scopes, nil
}

// Created is a key just made: the only time the key itself is known.
type Created struct {
	ID             uuid.UUID
	OrganizationID uuid.UUID
	Key            string
	CreatedAt      time.Time
}

// Create makes a key for the organization with that name, making the
// organization when it does not exist, in one transaction.
func Create(ctx context.Context, db *pgx.Conn, organization, name string, scopes []string) (Created, error) {
	key := Generate()
	var out Created
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		q := dbgen.New(tx)
		if _, err := tx.Exec(ctx, "SELECT set_config('careteam.request_id', 'apikey-create', true)"); err != nil {
			return err
		}
		org, err := q.EnsureOrganization(ctx, organization)
		if err != nil {
			return fmt.Errorf("organization: %w", err)
		}
		row, err := q.CreateAPIKey(ctx, dbgen.CreateAPIKeyParams{
			OrganizationID: org,
			Name:           name,
			KeyHash:        Hash(key),
			Scopes:         scopes,
		})
		if err != nil {
			return fmt.Errorf("store key: %w", err)
		}
		out = Created{ID: row.ID, OrganizationID: org, Key: key, CreatedAt: row.CreatedAt}
		return nil
	})
	return out, err
}

// List returns the keys, of one organization when organization is not "".
func List(ctx context.Context, db *pgx.Conn, organization string) ([]dbgen.ListAPIKeysRow, error) {
	return dbgen.New(db).ListAPIKeys(ctx, organization)
}

// Revoke ends the key with id at once.
func Revoke(ctx context.Context, db *pgx.Conn, id uuid.UUID) error {
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT set_config('careteam.request_id', 'apikey-revoke', true)"); err != nil {
			return err
		}
		_, err := dbgen.New(tx).RevokeAPIKey(ctx, id)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		return err
	})
}
