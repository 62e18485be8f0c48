package schema

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidApplicationID is wrapped by FromApplicationID's errors about the
// application id itself: not "namespace/id", or an id with characters other than a-z,
// 0-9 and '-'. The error text says which.
var ErrInvalidApplicationID = errors.New("invalid application id")

// ErrInvalidNamespace is returned for a namespace that could not prefix tenant schemas
// unambiguously: it must be a valid name without '-' (the namespace separator).
var ErrInvalidNamespace = errors.New("invalid namespace")

// FromApplicationID maps an application id "namespace/id" to its schema name
// "namespace-id", with '-' in the id turned into '_' so that the first '-' always
// separates the namespace: "municipalities/new-york" → "municipalities-new_york".
// The id may hold only a-z, 0-9 and '-': '_' is refused because "ns/new_york" would
// share the schema of "ns/new-york", and two tenants must never share one. Errors about
// the id wrap ErrInvalidApplicationID; the resulting name is validated.
func FromApplicationID(appID string) (string, error) {
	ns, id, ok := strings.Cut(appID, "/")
	if !ok || id == "" || strings.Contains(id, "/") {
		return "", fmt.Errorf("schema: %q: %w: must be \"namespace/id\"", appID, ErrInvalidApplicationID)
	}
	if err := validateNamespace(ns); err != nil {
		return "", err
	}
	if err := checkID(id); err != nil {
		return "", fmt.Errorf("schema: %q: %w", appID, err)
	}
	name := ns + "-" + strings.ReplaceAll(id, "-", "_")
	if err := Validate(name); err != nil {
		return "", err
	}
	return name, nil
}

// checkID checks the id part of an application id before it is mapped, so that no two
// ids can give one schema name.
func checkID(id string) error {
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-':
		case c == '_':
			return fmt.Errorf("%w: the id contains '_', which would share a schema with "+
				"the same id spelled with '-' (ids map '-' to '_')", ErrInvalidApplicationID)
		default:
			// Such a name was refused by Validate before ids were checked: keep
			// ErrInvalidName in the chain for callers that test for it.
			return fmt.Errorf("%w: the id may contain only a-z, 0-9 and '-': %w",
				ErrInvalidApplicationID, ErrInvalidName)
		}
	}
	return nil
}

// validateNamespace checks a namespace as used by FromApplicationID and List: a valid
// schema name with no '-' (the separator). The error wraps ErrInvalidNamespace.
func validateNamespace(ns string) error {
	if strings.Contains(ns, "-") {
		return fmt.Errorf("schema: namespace %q contains '-': %w", ns, ErrInvalidNamespace)
	}
	if err := Validate(ns); err != nil {
		return fmt.Errorf("schema: namespace: %w: %w", ErrInvalidNamespace, err)
	}
	return nil
}
