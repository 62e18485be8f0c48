package schema

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidApplicationID is returned by FromApplicationID for an id that is not
// "namespace/id".
var ErrInvalidApplicationID = errors.New("application id must be \"namespace/id\"")

// ErrInvalidNamespace is returned for a namespace that could not prefix tenant schemas
// unambiguously: it must be a valid name without '-' (the namespace separator).
var ErrInvalidNamespace = errors.New("invalid namespace")

// FromApplicationID maps an application id "namespace/id" to its schema name
// "namespace-id", with '-' in the id turned into '_' so that the first '-' always
// separates the namespace: "municipalities/new-york" → "municipalities-new_york".
// The result is validated.
func FromApplicationID(appID string) (string, error) {
	ns, id, ok := strings.Cut(appID, "/")
	if !ok || id == "" || strings.Contains(id, "/") {
		return "", fmt.Errorf("schema: %q: %w", appID, ErrInvalidApplicationID)
	}
	if err := ValidateNamespace(ns); err != nil {
		return "", err
	}
	name := ns + "-" + strings.ReplaceAll(id, "-", "_")
	if err := Validate(name); err != nil {
		return "", err
	}
	return name, nil
}

// ValidateNamespace checks a namespace as used by FromApplicationID and List: a valid
// schema name with no '-'. The error wraps ErrInvalidNamespace.
func ValidateNamespace(ns string) error {
	if strings.Contains(ns, "-") {
		return fmt.Errorf("schema: namespace %q contains '-': %w", ns, ErrInvalidNamespace)
	}
	if err := Validate(ns); err != nil {
		return fmt.Errorf("schema: namespace: %w: %w", ErrInvalidNamespace, err)
	}
	return nil
}
