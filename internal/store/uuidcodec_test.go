package store

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/careteam/careteam/internal/testdb"
)

func TestUUIDTravelsInBinary(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, testdb.New(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	registerUUID(conn)

	plan := conn.TypeMap().PlanEncode(pgtype.UUIDOID, pgtype.BinaryFormatCode, uuid.New())
	if _, ok := plan.(encodeGoogleUUID); !ok {
		t.Fatalf("uuid.UUID is encoded by %T, want encodeGoogleUUID", plan)
	}

	id := uuid.New()
	var back uuid.UUID
	var null *uuid.UUID
	var present *uuid.UUID
	var list []uuid.UUID
	err = conn.QueryRow(ctx, "SELECT $1::uuid, NULL::uuid, $1::uuid, ARRAY[$1::uuid, $2::uuid]", id, uuid.Nil).
		Scan(&back, &null, &present, &list)
	if err != nil {
		t.Fatal(err)
	}
	if back != id || null != nil || present == nil || *present != id || len(list) != 2 || list[0] != id {
		t.Fatalf("round trip: %v %v %v %v, want %v", back, null, present, list, id)
	}
	var text string
	if err := conn.QueryRow(ctx, "SELECT $1::uuid::text", id).Scan(&text); err != nil || text != id.String() {
		t.Fatalf("the database read %q (%v), want %s", text, err, id)
	}
}
