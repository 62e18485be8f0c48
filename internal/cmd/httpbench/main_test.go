package main

import (
	"os"
	"testing"

	"github.com/tenantkit/tenant/internal/testdb"
)

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }
