// Package middleware finds the tenant in an HTTP request: Resolvers for the host, a
// subdomain, a path prefix, a header, or a router parameter, and First to combine
// them. tenant.Config.Resolver takes one; nothing here touches the database.
package middleware
