package middleware_test

import (
	"fmt"
	"net/http/httptest"

	"github.com/tenantkit/tenant/middleware"
)

func ExampleSubdomain() {
	res := middleware.Subdomain("example.com")
	for _, host := range []string{"acme.example.com:8080", "www.example.com", "example.com", "a.b.example.com", "10.0.0.1"} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Host = host
		tenant, _ := res(r)
		fmt.Printf("%-22s %q\n", host, tenant)
	}
	// Output:
	// acme.example.com:8080  "acme"
	// www.example.com        ""
	// example.com            ""
	// a.b.example.com        ""
	// 10.0.0.1               ""
}

func ExamplePathPrefix() {
	r := httptest.NewRequest("GET", "/t/acme/documents/7", nil)
	tenant, next := middleware.PathPrefix("/t")(r)
	fmt.Println(tenant, next.URL.Path)
	// Output: acme /documents/7
}

func ExampleFirst() {
	res := middleware.First(middleware.Subdomain("localhost"), middleware.PathPrefix("/t"))
	for _, target := range []string{"http://acme.localhost:8080/documents", "http://localhost:8080/t/globex/documents"} {
		tenant, next := res(httptest.NewRequest("GET", target, nil))
		fmt.Println(tenant, next.URL.Path)
	}
	// Output:
	// acme /documents
	// globex /documents
}
