package main

import (
	"context"
	"net"
	"net/http"
	"strconv"
)

// target addresses one server: the request for a tenant and a document, both by index.
// Everything a request needs is made once, so that the load generator does the same
// little work per request for every server.
type target struct {
	urls    []string   // by document: http://ADDR/documents/ID
	hosts   []string   // by tenant: the Host of the example app, which reads the subdomain
	tenants [][]string // by tenant: the X-Tenant header of the others
}

// newTarget addresses the server at addr for tenants and documents; bySubdomain names
// the tenant in the Host (TENANT.localhost:PORT), as the example app reads it.
func newTarget(addr string, bySubdomain bool, tenants, documents int) (target, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return target{}, err
	}
	var t target
	for id := 1; id <= documents; id++ {
		t.urls = append(t.urls, "http://"+addr+"/documents/"+strconv.Itoa(id))
	}
	for i := range tenants {
		if bySubdomain {
			t.hosts = append(t.hosts, tenantName(i)+".localhost:"+port)
		} else {
			t.tenants = append(t.tenants, []string{tenantName(i)})
		}
	}
	return t, nil
}

// request is a GET of document doc for tenant.
func (t target) request(ctx context.Context, tenant, doc int) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.urls[doc], nil)
	if err != nil {
		return nil, err
	}
	if t.hosts != nil {
		req.Host = t.hosts[tenant]
	} else {
		req.Header["X-Tenant"] = t.tenants[tenant]
	}
	return req, nil
}
