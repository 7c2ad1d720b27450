package store_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/careteam/careteam/internal/store"
)

// TestBadInputWritesNothing sends requests the store must refuse and expects
// the tables to be exactly as they were.
func TestBadInputWritesNothing(t *testing.T) {
	t.Parallel()

	// world is what each case starts from: a patient with a PRIMARY and a
	// SPECIALIST, and a provider who is on no team.
	type world struct {
		patient, spare      uuid.UUID
		primary, specialist store.Assignment
		npi                 string
	}

	for _, tc := range []struct {
		name string
		// want is the store's error; nil means any error will do, as long as
		// nothing is written.
		want error
		call func(f *fixtures, w world) error
	}{
		{
			name: "AddMember with a missing provider",
			want: store.ErrProviderNotFound,
			call: func(f *fixtures, w world) error {
				_, err := f.store.AddMember(f.ctx, w.patient, uuid.New(), store.RoleSpecialist)
				return err
			},
		},
		{
			name: "AddMember PRIMARY with a missing provider",
			want: nil,
			call: func(f *fixtures, w world) error {
				_, err := f.store.AddMember(f.ctx, w.patient, uuid.New(), store.RolePrimary)
				return err
			},
		},
		{
			name: "AddMember with a missing patient",
			want: store.ErrPatientNotFound,
			call: func(f *fixtures, w world) error {
				_, err := f.store.AddMember(f.ctx, uuid.New(), w.spare, store.RoleConsultant)
				return err
			},
		},
		{
			name: "AddMember with an unknown role",
			call: func(f *fixtures, w world) error {
				_, err := f.store.AddMember(f.ctx, w.patient, w.spare, store.Role("OWNER"))
				return err
			},
		},
		{
			name: "AddMember of a member twice",
			want: store.ErrProviderAlreadyOnCareTeam,
			call: func(f *fixtures, w world) error {
				_, err := f.store.AddMember(f.ctx, w.patient, w.specialist.ProviderID, store.RoleConsultant)
				return err
			},
		},
		{
			name: "AddMember of a second PRIMARY",
			call: func(f *fixtures, w world) error {
				_, err := f.store.AddMember(f.ctx, w.patient, w.spare, store.RolePrimary)
				var conflict *store.PrimaryConflictError
				if !errors.As(err, &conflict) {
					return errors.New("want *store.PrimaryConflictError")
				}
				return err
			},
		},
		{
			name: "ReassignPrimary with a missing provider",
			want: store.ErrProviderNotFound,
			call: func(f *fixtures, w world) error {
				_, err := f.store.ReassignPrimary(f.ctx, w.patient, uuid.New(), nil)
				return err
			},
		},
		{
			name: "ReassignPrimary with a missing patient",
			want: store.ErrPatientNotFound,
			call: func(f *fixtures, w world) error {
				_, err := f.store.ReassignPrimary(f.ctx, uuid.New(), w.spare, nil)
				return err
			},
		},
		{
			name: "ReassignPrimary with an empty reason",
			call: func(f *fixtures, w world) error {
				_, err := f.store.ReassignPrimary(f.ctx, w.patient, w.spare, ptr(""))
				return err
			},
		},
		{
			name: "ReassignPrimary with a reason too long",
			call: func(f *fixtures, w world) error {
				_, err := f.store.ReassignPrimary(f.ctx, w.patient, w.spare, ptr(strings.Repeat("x", 501)))
				return err
			},
		},
		{
			name: "EndMember with an empty reason",
			call: func(f *fixtures, w world) error {
				_, err := f.store.EndMember(f.ctx, w.patient, w.specialist.ID, ptr(""))
				return err
			},
		},
		{
			name: "CreateProvider with a wrong check digit",
			want: store.ErrInvalidNPI,
			call: func(f *fixtures, w world) error {
				_, err := f.store.CreateProvider(f.ctx, store.CreateProviderParams{
					NPI: wrongCheckDigit(validNPI()), GivenName: "A", FamilyName: "B",
				})
				return err
			},
		},
		{
			name: "CreateProvider with letters for an NPI",
			want: store.ErrInvalidNPI,
			call: func(f *fixtures, w world) error {
				_, err := f.store.CreateProvider(f.ctx, store.CreateProviderParams{
					NPI: "12345678AB", GivenName: "A", FamilyName: "B",
				})
				return err
			},
		},
		{
			name: "CreateProvider with a taken NPI",
			want: store.ErrNPITaken,
			call: func(f *fixtures, w world) error {
				_, err := f.store.CreateProvider(f.ctx, store.CreateProviderParams{
					NPI: w.npi, GivenName: "A", FamilyName: "B",
				})
				return err
			},
		},
		{
			name: "CreatePatient with an empty name",
			call: func(f *fixtures, w world) error {
				_, err := f.store.CreatePatient(f.ctx, store.CreatePatientParams{
					GivenName: "", FamilyName: "B",
				})
				return err
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			patient := f.patient(t)
			spare := f.provider(t)
			w := world{
				patient:    patient.ID,
				spare:      spare.ID,
				primary:    f.addMember(t, patient.ID, f.provider(t).ID, store.RolePrimary),
				specialist: f.addMember(t, patient.ID, f.provider(t).ID, store.RoleSpecialist),
				npi:        spare.NPI,
			}
			before := f.snapshot(t)
			count := f.assignmentCount(t, patient.ID)

			err := tc.call(f, w)
			switch {
			case err == nil:
				t.Fatal("the store accepted it, want an error")
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			t.Logf("refused with: %v", err)

			if n := f.assignmentCount(t, patient.ID); n != count {
				t.Fatalf("assignments = %d, want %d as before", n, count)
			}
			if f.snapshot(t) != before {
				t.Fatal("a refused request changed the tables")
			}
		})
	}
}
