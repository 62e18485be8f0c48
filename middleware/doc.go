// Package middleware holds the HTTP mechanics of tenant's request lifecycle: Resolvers
// that find the tenant in a request (host, path, header, router parameter), the
// BufferedWriter that keeps a response back until the transaction has committed, and
// the error responses.
//
// Most applications use these through tenant.Config and tenant.Middleware; nothing here
// touches the database.
package middleware
