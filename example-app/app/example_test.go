package app_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"

	"github.com/tenantkit/tenant/example-app/app"
	"github.com/tenantkit/tenant/internal/testdb"
)

// The app serves the same tenant by subdomain and by path prefix.
func ExampleApp_Handler() {
	ctx := context.Background()
	a, err := app.New(ctx, app.Config{DSN: testdb.DatabaseURL()})
	if err != nil {
		panic(err)
	}
	defer a.Close()
	if err := a.Manager().Provisioner().Create(ctx, "example_initech"); err != nil {
		panic(err)
	}
	defer a.Manager().Drop(ctx, "example_initech")
	h := a.Handler()

	send := func(method, host, target, body string) {
		req := httptest.NewRequest(method, target, strings.NewReader(body))
		req.Host = host
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		fmt.Print(rec.Code, " ", rec.Body.String())
	}
	send("POST", "example_initech.localhost:8080", "/documents", `{"title": {"en": "TPS report", "de": "TPS-Bericht"}}`)
	send("GET", "localhost:8080", "/t/example_initech/documents", "")
	send("GET", "localhost:8080", "/t/nosuch/documents", "")
	// Output:
	// 201 {"id":1,"title":"TPS report","locale":"en","translations":{"de":"TPS-Bericht","en":"TPS report"}}
	// 200 [{"id":1,"title":"TPS report","locale":"en"}]
	// 404 unknown tenant
}
