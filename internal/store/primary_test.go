package store_test

import (
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/careteam/careteam/internal/store"
)

// TestAddMemberAllowsOnePrimaryPerPatient asks for a second PRIMARY and
// expects a conflict that names the first, with nothing written.
func TestAddMemberAllowsOnePrimaryPerPatient(t *testing.T) {
	t.Parallel()
	f := setup(t)
	patient := f.patient(t)
	first, second := f.provider(t), f.provider(t)

	primary := f.addMember(t, patient.ID, first.ID, store.RolePrimary)

	_, err := f.store.AddMember(f.ctx, patient.ID, second.ID, store.RolePrimary)
	var conflict *store.PrimaryConflictError
	if !errors.As(err, &conflict) {
		t.Fatalf("second PRIMARY: err = %v, want *store.PrimaryConflictError", err)
	}
	if conflict.ExistingAssignmentID != primary.ID {
		t.Fatalf("conflict names %s, want the first PRIMARY %s",
			conflict.ExistingAssignmentID, primary.ID)
	}

	if got := f.activePrimaries(t, patient.ID); len(got) != 1 || got[0] != primary.ID {
		t.Fatalf("active primaries = %v, want only %s", got, primary.ID)
	}
	if n := f.assignmentCount(t, patient.ID); n != 1 {
		t.Fatalf("assignments = %d, want 1", n)
	}
}

// TestAddMemberAllowsSeveralNonPrimaryMembers adds several members of each
// role that has no limit, next to a PRIMARY.
func TestAddMemberAllowsSeveralNonPrimaryMembers(t *testing.T) {
	t.Parallel()

	for _, role := range []store.Role{store.RoleSpecialist, store.RoleConsultant} {
		t.Run(string(role), func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			patient := f.patient(t)
			primary := f.addMember(t, patient.ID, f.provider(t).ID, store.RolePrimary)

			want := map[uuid.UUID]bool{primary.ID: true}
			for range 3 {
				a := f.addMember(t, patient.ID, f.provider(t).ID, role)
				if a.Role != role || a.RemovedAt != nil || a.RemovalReason != nil {
					t.Fatalf("new member = %+v, want an active %s", a, role)
				}
				want[a.ID] = true
			}

			team, err := f.store.ActiveCareTeam(f.ctx, patient.ID)
			if err != nil {
				t.Fatalf("active care team: %v", err)
			}
			if len(team) != len(want) {
				t.Fatalf("team has %d members, want %d", len(team), len(want))
			}
			if team[0].ID != primary.ID {
				t.Fatalf("team[0] = %s (%s), want the PRIMARY first", team[0].ID, team[0].Role)
			}
			for _, a := range team {
				if !want[a.ID] {
					t.Fatalf("unexpected member %+v", a)
				}
			}
		})
	}
}

// TestAddMemberAfterEndedPrimary ends the PRIMARY and expects a new one to be
// accepted, and the same provider too after that one ends.
func TestAddMemberAfterEndedPrimary(t *testing.T) {
	t.Parallel()
	f := setup(t)
	patient := f.patient(t)
	first, second := f.provider(t), f.provider(t)

	old := f.addMember(t, patient.ID, first.ID, store.RolePrimary)
	if _, err := f.store.EndMember(f.ctx, patient.ID, old.ID, nil); err != nil {
		t.Fatalf("end PRIMARY: %v", err)
	}

	replacement := f.addMember(t, patient.ID, second.ID, store.RolePrimary)
	if got := f.activePrimaries(t, patient.ID); len(got) != 1 || got[0] != replacement.ID {
		t.Fatalf("active primaries = %v, want only %s", got, replacement.ID)
	}

	if _, err := f.store.EndMember(f.ctx, patient.ID, replacement.ID, nil); err != nil {
		t.Fatalf("end second PRIMARY: %v", err)
	}
	again := f.addMember(t, patient.ID, first.ID, store.RolePrimary)
	if again.ID == old.ID {
		t.Fatal("the first provider's return reused the ended assignment")
	}
	if n := f.assignmentCount(t, patient.ID); n != 3 {
		t.Fatalf("assignments = %d, want 3: ended ones stay", n)
	}
}

// TestReassignPrimary covers the outcomes of a reassignment one by one.
func TestReassignPrimary(t *testing.T) {
	t.Parallel()

	t.Run("no primary yet", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		patient, provider := f.patient(t), f.provider(t)

		got, err := f.store.ReassignPrimary(f.ctx, patient.ID, provider.ID, nil)
		if err != nil {
			t.Fatalf("reassign: %v", err)
		}
		if got.Previous != nil {
			t.Fatalf("previous = %+v, want nil", got.Previous)
		}
		checkActivePrimary(t, got.Assignment, patient.ID, provider.ID)
		if ids := f.activePrimaries(t, patient.ID); len(ids) != 1 || ids[0] != got.Assignment.ID {
			t.Fatalf("active primaries = %v, want only %s", ids, got.Assignment.ID)
		}
	})

	for _, tc := range []struct {
		name       string
		reason     *string
		wantReason string
	}{
		{name: "replaces with default reason", wantReason: store.DefaultReassignReason},
		{name: "replaces with given reason", reason: ptr("patient moved"), wantReason: "patient moved"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			patient, oldProvider, newProvider := f.patient(t), f.provider(t), f.provider(t)
			old := f.addMember(t, patient.ID, oldProvider.ID, store.RolePrimary)

			got, err := f.store.ReassignPrimary(f.ctx, patient.ID, newProvider.ID, tc.reason)
			if err != nil {
				t.Fatalf("reassign: %v", err)
			}
			checkActivePrimary(t, got.Assignment, patient.ID, newProvider.ID)
			checkEnded(t, got.Previous, old.ID, tc.wantReason)
			if got.Assignment.AssignedAt.Before(*got.Previous.RemovedAt) {
				t.Fatalf("new PRIMARY assigned at %v, before the old one ended at %v",
					got.Assignment.AssignedAt, *got.Previous.RemovedAt)
			}
			if ids := f.activePrimaries(t, patient.ID); len(ids) != 1 || ids[0] != got.Assignment.ID {
				t.Fatalf("active primaries = %v, want only %s", ids, got.Assignment.ID)
			}
			if n := f.assignmentCount(t, patient.ID); n != 2 {
				t.Fatalf("assignments = %d, want 2", n)
			}
		})
	}

	t.Run("same provider already primary", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		patient, provider := f.patient(t), f.provider(t)
		current := f.addMember(t, patient.ID, provider.ID, store.RolePrimary)
		before := f.snapshot(t)

		got, err := f.store.ReassignPrimary(f.ctx, patient.ID, provider.ID, ptr("no-op"))
		if err != nil {
			t.Fatalf("reassign: %v", err)
		}
		if got.Previous != nil {
			t.Fatalf("previous = %+v, want nil", got.Previous)
		}
		if got.Assignment.ID != current.ID {
			t.Fatalf("assignment = %s, want the current PRIMARY %s", got.Assignment.ID, current.ID)
		}
		if after := f.snapshot(t); after != before {
			t.Fatal("a reassignment to the current PRIMARY changed the tables")
		}
	})

	for _, role := range []store.Role{store.RoleSpecialist, store.RoleConsultant} {
		t.Run("promotes "+string(role), func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			patient, provider := f.patient(t), f.provider(t)
			member := f.addMember(t, patient.ID, provider.ID, role)

			got, err := f.store.ReassignPrimary(f.ctx, patient.ID, provider.ID, nil)
			if err != nil {
				t.Fatalf("reassign: %v", err)
			}
			if got.Previous != nil {
				t.Fatalf("previous = %+v, want nil: there was no PRIMARY", got.Previous)
			}
			checkActivePrimary(t, got.Assignment, patient.ID, provider.ID)
			if got.Assignment.ID == member.ID {
				t.Fatal("the promotion rewrote the member's assignment instead of starting one")
			}
			checkEnded(t, f.assignment(t, patient.ID, member.ID), member.ID, "promoted to PRIMARY")
		})
	}

	t.Run("promotes specialist over another primary", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		patient, oldProvider, provider := f.patient(t), f.provider(t), f.provider(t)
		old := f.addMember(t, patient.ID, oldProvider.ID, store.RolePrimary)
		member := f.addMember(t, patient.ID, provider.ID, store.RoleSpecialist)

		got, err := f.store.ReassignPrimary(f.ctx, patient.ID, provider.ID, nil)
		if err != nil {
			t.Fatalf("reassign: %v", err)
		}
		checkActivePrimary(t, got.Assignment, patient.ID, provider.ID)
		checkEnded(t, got.Previous, old.ID, store.DefaultReassignReason)
		checkEnded(t, f.assignment(t, patient.ID, member.ID), member.ID, "promoted to PRIMARY")

		team, err := f.store.ActiveCareTeam(f.ctx, patient.ID)
		if err != nil {
			t.Fatalf("active care team: %v", err)
		}
		if len(team) != 1 || team[0].ID != got.Assignment.ID {
			t.Fatalf("active team = %+v, want only the new PRIMARY", team)
		}
	})

	t.Run("missing patient", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		provider := f.provider(t)
		before := f.snapshot(t)

		_, err := f.store.ReassignPrimary(f.ctx, uuid.New(), provider.ID, nil)
		if !errors.Is(err, store.ErrPatientNotFound) {
			t.Fatalf("err = %v, want ErrPatientNotFound", err)
		}
		if f.snapshot(t) != before {
			t.Fatal("a failed reassignment changed the tables")
		}
	})

	t.Run("missing provider", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		patient := f.patient(t)
		f.addMember(t, patient.ID, f.provider(t).ID, store.RolePrimary)
		before := f.snapshot(t)

		_, err := f.store.ReassignPrimary(f.ctx, patient.ID, uuid.New(), nil)
		if !errors.Is(err, store.ErrProviderNotFound) {
			t.Fatalf("err = %v, want ErrProviderNotFound", err)
		}
		if f.snapshot(t) != before {
			t.Fatal("a failed reassignment changed the tables")
		}
	})
}

// checkActivePrimary fails the test unless a is an active PRIMARY of the
// patient and provider.
func checkActivePrimary(t *testing.T, a store.Assignment, patientID, providerID uuid.UUID) {
	t.Helper()
	if a.ID == uuid.Nil || a.PatientID != patientID || a.ProviderID != providerID ||
		a.Role != store.RolePrimary || a.RemovedAt != nil || a.RemovalReason != nil {
		t.Fatalf("assignment = %+v, want an active PRIMARY of patient %s and provider %s",
			a, patientID, providerID)
	}
}

// checkEnded fails the test unless a is the assignment id, ended with reason.
func checkEnded(t *testing.T, a *store.Assignment, id uuid.UUID, reason string) {
	t.Helper()
	if a == nil {
		t.Fatalf("assignment %s: got nil, want it ended", id)
	}
	if a.ID != id {
		t.Fatalf("ended assignment = %s, want %s", a.ID, id)
	}
	if a.RemovedAt == nil {
		t.Fatalf("assignment %s: removed_at is null, want it set", id)
	}
	if a.RemovedAt.Before(a.AssignedAt) {
		t.Fatalf("assignment %s: removed at %v, before it was assigned at %v",
			id, *a.RemovedAt, a.AssignedAt)
	}
	if a.RemovalReason == nil || *a.RemovalReason != reason {
		t.Fatalf("assignment %s: removal reason = %v, want %q", id, deref(a.RemovalReason), reason)
	}
}

// assignment returns the patient's assignment id from the history.
func (f *fixtures) assignment(t *testing.T, patientID, id uuid.UUID) *store.Assignment {
	t.Helper()
	history, err := f.store.CareTeamHistory(f.ctx, patientID)
	if err != nil {
		t.Fatalf("care team history: %v", err)
	}
	for _, a := range history {
		if a.ID == id {
			return &a
		}
	}
	t.Fatalf("assignment %s is not in the patient's history", id)
	return nil
}

func ptr[T any](v T) *T { return &v }

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}
