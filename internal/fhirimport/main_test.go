package fhirimport

import (
	"os"
	"testing"

	"github.com/careteam/careteam/internal/testdb"
)

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }
